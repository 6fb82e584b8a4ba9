"""Tests for realtime.io."""
