"""Tests for realtime.faces."""
