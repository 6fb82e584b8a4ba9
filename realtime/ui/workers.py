"""Run slow work off the GUI thread and hand the result back to it.

``SerialWorker`` is one Python thread with a queue: jobs run in submission order (so
adding, renaming and removing sources never race), and each job's result or exception
comes back through a queued Qt signal, so callbacks always run on the GUI thread. The
owner calls ``stop()``, which lets the current job finish and joins the thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from realtime.frame.streams import own_stream

log = logging.getLogger(__name__)

Done = Callable[[Any], None]
Failed = Callable[[BaseException, str], None]


@dataclass(frozen=True)
class _Job:
    token: int
    label: str
    fn: Callable[[], Any]


class SerialWorker(QObject):
    """A named worker thread; ``busy_changed(int)`` reports how many jobs are pending."""

    _finished = Signal(int, object, object, str)  # token, result, exception, traceback
    busy_changed = Signal(int)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._callbacks: dict[int, tuple[Done | None, Failed | None]] = {}
        self._tokens = itertools.count(1)
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.current_label = ""
        self._finished.connect(self._deliver)

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, label: str, fn: Callable[[], Any], on_done: Done | None = None,
               on_error: Failed | None = None) -> int:
        """Queue ``fn``; ``on_done(result)`` / ``on_error(exc, trace)`` run on the GUI thread."""
        if self._stopped:
            raise RuntimeError(f"worker {self.name} is stopped")
        token = next(self._tokens)
        self._callbacks[token] = (on_done, on_error)
        self._pending += 1
        self.busy_changed.emit(self._pending)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"swapcam-{self.name}",
                                            daemon=True)
            self._thread.start()
        self._queue.put(_Job(token, label, fn))
        return token

    def stop(self, timeout: float = 10.0) -> bool:
        """Drop queued jobs, let the running one finish, join. False if it did not end."""
        self._stopped = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.error("worker %s did not stop within %.0f s (job: %s)", self.name, timeout,
                      self.current_label)
            return False
        return True

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self.current_label = job.label
            try:
                with own_stream(load=True):  # what it opens or builds: never the default stream
                    result = job.fn()
            except BaseException as exc:  # reported to the GUI, never swallowed
                log.debug("job %s failed", job.label, exc_info=True)
                self._finished.emit(job.token, None, exc, traceback.format_exc())
            else:
                self._finished.emit(job.token, result, None, "")
            self.current_label = ""

    @Slot(int, object, object, str)
    def _deliver(self, token: int, result: Any, exc: Any, trace: str) -> None:
        on_done, on_error = self._callbacks.pop(token, (None, None))
        self._pending = max(self._pending - 1, 0)
        self.busy_changed.emit(self._pending)
        if self._stopped:
            return
        if exc is not None:
            if on_error is not None:
                on_error(exc, trace)
            else:
                log.error("background job failed:\n%s", trace)
        elif on_done is not None:
            on_done(result)
