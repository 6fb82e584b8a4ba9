"""The outputs the user switches on and off while running (virtual camera, recorder).

They hang off one ``SinkSwitch`` handed to the pipeline once, so toggling them never
rebuilds it.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class Sink(Protocol):
    def start(self) -> None: ...
    def send(self, image: np.ndarray, captured_ns: int) -> None: ...
    def stop(self) -> None: ...
    def describe(self) -> str: ...



class SinkSwitch:
    """A ``FrameSink`` that forwards to the sinks currently switched on.

    A child that raises is detached and stopped; its error is kept for the UI
    (``take_errors``) instead of killing the pipeline's output thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, Sink] = {}
        self._errors: list[str] = []
        self.last_size: tuple[int, int] | None = None  # (width, height) of the last frame

    def start(self) -> None:
        return None

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        self.last_size = (int(image.shape[1]), int(image.shape[0]))
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            try:
                child.send(image, captured_ns)
            except Exception as exc:
                log.exception("%s failed", child.describe())
                self.detach(key)
                with self._lock:
                    self._errors.append(f"{key} stopped: {exc}")

    def stop(self) -> None:
        for key in list(self._children):
            self.detach(key)

    def describe(self) -> str:
        with self._lock:
            return "outputs: " + (", ".join(c.describe() for c in self._children.values())
                                  or "none")

    def attach(self, key: str, sink: Sink) -> None:
        """Start ``sink`` and forward frames to it (replacing any sink under ``key``)."""
        sink.start()
        self.detach(key)
        with self._lock:
            self._children[key] = sink

    def detach(self, key: str) -> bool:
        with self._lock:
            child = self._children.pop(key, None)
        if child is None:
            return False
        try:
            child.stop()
        except Exception:
            log.exception("stopping %s failed", key)
        return True

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._children

    def take_errors(self) -> list[str]:
        """Errors since the last call; a child whose ``error`` is set is detached."""
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            error = getattr(child, "error", None)
            if error is not None:
                self.detach(key)
                with self._lock:
                    self._errors.append(f"{key} stopped: {error}")
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

