"""Tests for realtime.frame."""
