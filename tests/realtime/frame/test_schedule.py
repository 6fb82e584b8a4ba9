"""Sync or async: the swap clock's hysteresis."""

from __future__ import annotations

import pytest

from realtime.frame.schedule import SwapClock


def test_auto_switches_with_hysteresis() -> None:
    clock = SwapClock("auto")
    assert clock.mode == "async" and clock.choose("auto", 30.0) == "async"  # nothing measured
    clock.note(5.0)  # 5 ms of a 33 ms frame: well below 35 %
    assert clock.choose("auto", 30.0) == "sync"
    clock.note(15.0)  # EMA 8 ms: between the two thresholds, stays
    assert clock.choose("auto", 30.0) == "sync"
    for _ in range(10):
        clock.note(40.0)
    assert clock.choose("auto", 30.0) == "async"
    assert clock.choose("sync", 30.0) == "sync"  # a fixed setting wins


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="swap_mode"):
        SwapClock("sometimes")
