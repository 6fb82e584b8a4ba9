"""When to swap: every frame (sync) or on the swap worker while frames go on (async).

``auto`` goes async when one swap takes more than ``ASYNC_ABOVE`` of a frame interval,
and back to sync below ``SYNC_BELOW`` (hysteresis, so the mode does not flap).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

SWAP_MODES = ("auto", "sync", "async")
ASYNC_ABOVE = 0.6
SYNC_BELOW = 0.35


class SwapClock:
    """The swap's running cost (EMA of one call, ms) and the mode it calls for."""

    def __init__(self, setting: str) -> None:
        if setting not in SWAP_MODES:
            raise ValueError(f"swap_mode: expected one of {SWAP_MODES}, got {setting!r}")
        self.swap_ms: float | None = None
        self.mode = "async" if setting == "auto" else setting

    def note(self, ms: float) -> None:
        self.swap_ms = ms if self.swap_ms is None else 0.7 * self.swap_ms + 0.3 * ms

    def choose(self, setting: str, fps: float) -> str:
        """The mode for this frame, given ``Settings.swap_mode`` and the input rate."""
        if setting != "auto":
            self.mode = setting
            return self.mode
        interval_ms = 1000.0 / max(fps, 1.0)
        if self.swap_ms is None:
            return self.mode
        if self.mode == "sync" and self.swap_ms > ASYNC_ABOVE * interval_ms:
            log.info("swap takes %.0f ms per frame of %.0f ms: swapping asynchronously",
                     self.swap_ms, interval_ms)
            self.mode = "async"
        elif self.mode == "async" and self.swap_ms < SYNC_BELOW * interval_ms:
            log.info("swap takes %.0f ms per frame of %.0f ms: swapping every frame",
                     self.swap_ms, interval_ms)
            self.mode = "sync"
        return self.mode
