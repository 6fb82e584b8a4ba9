"""Reading a frame source on the capture thread: failures and silences are retried.

A source that raises (camera unplugged, file gone) is closed and reopened with an
exponential backoff; one that reports its own state (a camera reconnecting by itself,
a file that ended) is left to it; any other source silent for ``SILENCE_S`` is
reopened like a failed one. ``state`` and ``reconnects`` are for the stats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.io.capture import FrameSource
    from realtime.types import Frame

log = logging.getLogger(__name__)

SILENCE_S = 2.0


class SourceReader:
    def __init__(self, source: FrameSource, backoff: tuple[float, float] = (0.05, 2.0)) -> None:
        self.source = source
        self.backoff = backoff
        self.state = "stopped"
        self.reconnects = 0

    def run(self, stop: threading.Event, deliver: Callable[[Frame], None]) -> None:
        """Read until ``stop``; each frame goes to ``deliver``."""
        delay = self.backoff[0]
        last_frame = time.monotonic()
        while not stop.is_set():
            try:
                frame = self.source.read()
            except Exception as exc:  # a camera unplugged or a file gone: retried, reported
                log.warning("source %s failed (%s); reconnecting", self.source.describe(), exc)
                self.state = "reconnecting"
                delay = self._reconnect(stop, delay)
                last_frame = time.monotonic()
                continue
            if frame is None:
                state = getattr(self.source, "state", None)
                if state in ("reconnecting", "ended"):
                    self.state = str(state)
                    last_frame = time.monotonic()
                    stop.wait(0.005)
                elif time.monotonic() - last_frame > SILENCE_S:
                    log.warning("source %s gave no frame for %.0f s; reopening",
                                self.source.describe(), SILENCE_S)
                    self.state = "reconnecting"
                    delay = self._reconnect(stop, delay)
                    last_frame = time.monotonic()
                else:
                    stop.wait(0.005)
                continue
            last_frame = time.monotonic()
            delay = self.backoff[0]
            self.state = "running"
            deliver(frame)

    def _reconnect(self, stop: threading.Event, delay: float) -> float:
        """Close, wait ``delay`` (interruptible), reopen; returns the next delay."""
        try:
            self.source.close()
        except Exception as exc:  # the old handle may be broken already
            log.debug("closing the failed source: %s", exc)
        while not stop.wait(delay):
            self.reconnects += 1
            try:
                self.source.open()
            except Exception as exc:
                log.warning("reopening %s failed: %s", self.source.describe(), exc)
                delay = min(delay * 2.0, self.backoff[1])
                continue
            log.info("source %s reopened", self.source.describe())
            self.state = "running"
            return self.backoff[0]
        return delay
