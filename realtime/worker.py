"""A background worker that always runs the newest submitted job (one-slot handoffs)."""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar

from realtime.slot import LatestSlot

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


class WorkerError(RuntimeError):
    """A pipeline thread failed. ``thread`` names it; ``traceback`` is the full text."""

    def __init__(self, thread: str, exc: BaseException) -> None:
        self.thread = thread
        self.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"{thread} thread failed: {type(exc).__name__}: {exc}")
        self.__cause__ = exc


class Worker(Generic[J, R]):
    """Runs ``fn`` on the newest submitted job, on the thread that calls :meth:`loop`."""

    def __init__(self, name: str, fn: Callable[[J], R], nice: int = 0) -> None:
        self.name = name
        self.fn = fn
        self.nice = nice
        self.jobs: LatestSlot[J] = LatestSlot(f"{name}-in")
        self.results: LatestSlot[R] = LatestSlot(f"{name}-out")
        self._busy = threading.Event()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def reset(self) -> None:
        """Forget a job left unfinished by a previous run."""
        self._busy.clear()

    def submit(self, job: J) -> None:
        self._busy.set()
        self.jobs.put(job)

    def loop(self, stop: threading.Event) -> None:
        if self.nice:
            lower_priority(self.nice)
        while not stop.is_set():
            job = self.jobs.get(timeout=0.1)
            if job is None:
                continue
            try:
                result = self.fn(job)
            except Exception:
                if stop.is_set():  # the model call was cancelled by ``stop``
                    return
                raise
            self.results.put(result)
            self._busy.clear()


def lower_priority(step: int) -> None:
    """Raise this thread's nice value by ``step`` (Linux: nice is per thread), so on a
    small CPU the frame path wins over a background worker. Best effort elsewhere."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + step)
    except (AttributeError, OSError) as exc:  # not Linux/macOS, or not permitted
        log.debug("could not lower the worker's priority: %s", exc)


def cancel_model_call(processor: object) -> bool:
    """Cancel the swapper's model call in progress, if it can be (ONNX Runtime's
    terminate flag). True when a cancel was sent: the call's error is then expected."""
    cancel = getattr(getattr(processor, "swapper", None), "cancel", None)
    if cancel is None:
        return False
    try:
        cancel()
    except Exception:  # best effort: the thread still ends after its call
        log.exception("cancelling the model call failed")
    return True


def close_in_parallel(closers: list[Callable[[], None]], deadline: float) -> bool:
    """Call each closer on its own daemon thread and wait until ``deadline``
    (``time.monotonic``): one stuck output must not hold the others, nor the caller.
    A closer's exception is logged. True when all returned in time."""
    threads = [threading.Thread(target=_close_one, args=(c,), daemon=True,
                                name="swapcam-close") for c in closers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _close_one(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # closing must go on for the others; the failure is logged
        log.exception("closing failed")
