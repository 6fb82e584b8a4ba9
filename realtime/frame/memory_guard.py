"""Out of GPU memory in the frame path: fewer faces per engine call, then fewer models,
never the session's end.

A ``torch.OutOfMemoryError`` (or an engine's out-of-memory ``EngineError``) from an engine
call halves the rows per call (down to one) and the call is retried in chunks
(``BatchCap``). At one face a call it is an ``OutOfMemory``; ``MemoryFallback`` then turns
the face enhancer off, then the face parser (the box mask), and past that lets the frame
through unswapped and tries again on the next one. Each step leaves a ``notice`` the window
shows in a banner and ``live --no-window`` prints in its stats line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from engines.base import EngineError
from realtime.types import Frame, StageTimings, SwapResult

log = logging.getLogger(__name__)

T = TypeVar("T")

# How ONNX Runtime (CUDA/DirectML: "Failed to allocate memory", BFC arena) and TensorRT
# ("out of memory", OUT_OF_MEMORY error code) word an allocation failure in their errors.
_OOM_WORDS = ("out of memory", "out_of_memory", "failed to allocate memory", "outofmemory")


class OutOfMemory(EngineError):
    """Still out of device memory at one face a call."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a device allocation failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OutOfMemory) or _is_torch_oom(current):
            return True
        if isinstance(current, EngineError | RuntimeError) and any(
                word in str(current).lower() for word in _OOM_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_torch_oom(exc: BaseException) -> bool:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to ask
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


def _release_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # what the failed call left cached


def unswapped(frame: Frame) -> Callable[[], SwapResult]:
    """The frame as captured: what is shown when its swap ran out of memory."""
    return lambda: SwapResult(frame, frame.image, (), StageTimings({}), False, None)


class BatchCap:
    """Rows per engine call: unlimited until an out-of-memory error, then halved."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.rows: int | None = None
        self.notice: str | None = None

    def run(self, call: Callable[..., list[Any]], *tensors: Any) -> list[Any]:
        """``call`` on row chunks of ``tensors`` (equal rows), results concatenated."""
        while True:
            total = int(tensors[0].shape[0])
            step = min(total, self.rows or total)
            try:
                out: list[Any] = []
                for start in range(0, total, step):
                    out.extend(call(*(t[start:start + step] for t in tensors)))
                return out
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _release_cache()
                if step == 1:
                    raise OutOfMemory(f"{self.what}: out of GPU memory even at one face a "
                                      f"call ({exc})") from exc
                self.rows = max(1, step // 2)
                self.notice = (f"GPU memory is short: the {self.what} now takes {self.rows} "
                               f"face(s) per call")
                log.warning("%s", self.notice)


class MemoryFallback:
    """What the frame path gives up, one step per out-of-memory error that a smaller
    batch did not cure: the enhancer, then the parser (box mask), then this frame's swap."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.steps: list[str] = []  # what was turned off, in order
        self.skipped = 0  # frames (or worker swaps) let through unswapped
        self._notice: str | None = None
        self._lock = threading.Lock()  # the frame thread and the swap worker both call

    @property
    def notice(self) -> str | None:
        """What the user has lost to memory: the generator's batch cap, then the steps."""
        cap = getattr(getattr(self.processor, "batch_cap", None), "notice", None)
        parts = [p for p in (cap, self._notice) if p]
        return "; ".join(parts) or None

    def run(self, call: Callable[..., T], *args: Any,
            fallback: Callable[[], T]) -> T:
        """``call(*args)``; on an out-of-memory error one step down and ``fallback()``."""
        try:
            return call(*args)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            self.step_down(exc)
            return fallback()

    def wrap(self, call: Callable[[Any], T], fallback: Callable[[], T]) -> Callable[[Any], T]:
        return lambda job: self.run(call, job, fallback=fallback)

    def step_down(self, exc: BaseException) -> str:
        """Turn the next model off (or skip this frame's swap); returns the notice."""
        _release_cache()
        processor = self.processor
        with self._lock:
            enhancer = getattr(processor, "enhancer", None)
            if enhancer is not None:
                processor.enhancer = None
                enhancer.close()  # its engine's memory back to the generator
                step = "the face enhancer is off"
            elif getattr(processor, "parser", None) is not None:
                processor.parser = None  # uses_parser is False: the box mask
                step = "the face parser is off (box mask)"
            else:
                self.skipped += 1
                step = f"{self.skipped} frame(s) shown unswapped"
            # the count of unswapped frames replaces its previous count
            self.steps = [s for s in self.steps if "unswapped" not in s] + [step]
            self._notice = "GPU memory is short: " + "; ".join(self.steps)
            notice = self._notice
        log.warning("%s (%s)", notice, exc)
        return notice
