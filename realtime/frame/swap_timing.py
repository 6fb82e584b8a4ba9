"""How long a swap takes: the GPU's time on the device path, the wall clock on the host.

On the device path a swap call only queues work: its wall time is the launch (about a
millisecond), which would keep ``--swap-mode auto`` in sync mode on any GPU. So each call is
bracketed by two CUDA events on the calling thread's stream and its time is read with
``elapsed_time`` once the end event has completed (``query``), never by waiting: the frame
thread polls on its next frames; the swap worker waits for its own swap anyway (it takes
the next job only after the previous swap completed) and reads it at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class SwapTiming:
    """One swap call in flight: its CUDA events (device) or its start time (host)."""

    t0: float
    start: Any = None
    end: Any = None
    ms: float | None = None  # the host path's wall time


class SwapTimer:
    """Readings of swap calls in the order they complete (``done``)."""

    def __init__(self, on_device: bool) -> None:
        self.on_device = on_device
        self._pending: deque[SwapTiming] = deque()
        self._lock = threading.Lock()

    def begin(self) -> SwapTiming:
        timing = SwapTiming(time.perf_counter())
        if self.on_device:
            import torch

            timing.start = torch.cuda.Event(enable_timing=True)
            timing.start.record(torch.cuda.current_stream())
        return timing

    def end(self, timing: SwapTiming, *, wait: bool = False) -> None:
        """The call returned. ``wait``: block until its GPU work is done (only for the
        thread that owns that work and has nothing else to do: the swap worker)."""
        if not self.on_device:
            timing.ms = (time.perf_counter() - timing.t0) * 1000.0
        else:
            import torch

            timing.end = torch.cuda.Event(enable_timing=True)
            timing.end.record(torch.cuda.current_stream())
            if wait:
                timing.end.synchronize()
        with self._lock:
            self._pending.append(timing)

    def done(self) -> list[float]:
        """Milliseconds of each finished call not read yet (host: at once; device: those
        whose end event completed, oldest first)."""
        readings: list[float] = []
        with self._lock:
            while self._pending:
                timing = self._pending[0]
                if timing.ms is not None:
                    readings.append(timing.ms)
                elif timing.end.query():
                    readings.append(float(timing.start.elapsed_time(timing.end)))
                else:
                    break
                self._pending.popleft()
        return readings
