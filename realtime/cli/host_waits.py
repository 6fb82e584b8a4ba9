"""Host waits on the GPU, counted per thread while a ``HostWaits`` is installed.

A host wait is a call that blocks the calling thread until device work is done:
``torch.cuda.synchronize``, ``Stream.synchronize``, ``Event.synchronize``, and every read of
a CUDA tensor into host memory (``Tensor.cpu``, ``.item``, ``.tolist``, ``.to`` a CPU
device). The counter wraps those entry points (whatever ``torch.cuda`` holds when it is
installed, so the test double of ``tests/fake_cuda.py`` is counted the same way) and keys
each wait by the thread's name (``swapcam-process`` → ``process``). On a machine without
CUDA tensors nothing is counted: every thread waits 0 times.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

THREAD_PREFIX = "swapcam-"


def _thread_key() -> str:
    name = threading.current_thread().name
    return name[len(THREAD_PREFIX):] if name.startswith(THREAD_PREFIX) else name


class HostWaits:
    """Context manager: ``counts`` (thread → waits) since install or the last ``reset``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def _note(self) -> None:
        with self._lock:
            self.counts[_thread_key()] += 1

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def _patch(self, owner: Any, name: str, counts_if: Callable[..., bool]) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if counts_if(*args, result=result, **kwargs):
                self._note()
            return result

        setattr(owner, name, counted)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> HostWaits:
        import torch

        def always(*_args: Any, **_kwargs: Any) -> bool:
            return True

        def on_cuda(tensor: Any, *_args: Any, **_kwargs: Any) -> bool:
            return bool(getattr(tensor, "is_cuda", False))

        def to_host(tensor: Any, *_args: Any, result: Any = None, **_kwargs: Any) -> bool:
            return bool(getattr(tensor, "is_cuda", False)) and \
                getattr(getattr(result, "device", None), "type", None) == "cpu"

        self._patch(torch.cuda, "synchronize", always)
        for cls in (getattr(torch.cuda, "Stream", None), getattr(torch.cuda, "Event", None)):
            if cls is not None:
                self._patch(cls, "synchronize", always)
        for name in ("cpu", "item", "tolist"):
            self._patch(torch.Tensor, name, on_cuda)
        self._patch(torch.Tensor, "to", to_host)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        while self._undo:
            self._undo.pop()()

    def per_frame(self, threads: tuple[str, ...], frames: int) -> dict[str, float]:
        """Waits per processed frame for ``threads`` (and any other thread that waited)."""
        with self._lock:
            counts = dict(self.counts)
        names = list(threads) + sorted(set(counts) - set(threads))
        return {name: round(counts.get(name, 0) / max(frames, 1), 3) for name in names}
