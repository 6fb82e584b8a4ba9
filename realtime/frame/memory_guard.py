"""Out of GPU memory in the frame path: fewer faces per engine call, never the session's end.

A ``torch.OutOfMemoryError`` from an engine call halves the rows per call (down to one)
and the call is retried in chunks; ``notice`` says so for the window. Only one face a call
still out of memory is an ``EngineError`` saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engines.base import EngineError

log = logging.getLogger(__name__)


class BatchCap:
    """Rows per engine call: unlimited until an out-of-memory error, then halved."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.rows: int | None = None
        self.notice: str | None = None

    def run(self, call: Callable[..., list[Any]], *tensors: Any) -> list[Any]:
        """``call`` on row chunks of ``tensors`` (equal rows), results concatenated."""
        import torch

        while True:
            total = int(tensors[0].shape[0])
            step = min(total, self.rows or total)
            try:
                out: list[Any] = []
                for start in range(0, total, step):
                    out.extend(call(*(t[start:start + step] for t in tensors)))
                return out
            except torch.OutOfMemoryError as exc:
                if step == 1:
                    raise EngineError(f"{self.what}: out of GPU memory even at one face a call "
                                      f"({exc}); close other GPU programs or choose a smaller "
                                      "model") from exc
                self.rows = max(1, step // 2)
                self.notice = (f"GPU memory is short: the {self.what} now takes {self.rows} "
                               f"face(s) per call")
                log.warning("%s", self.notice)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()  # what the failed call left cached
