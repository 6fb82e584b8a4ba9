"""Tests for realtime.cli."""
