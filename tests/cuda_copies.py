"""A double of torch's host ↔ device copies that counts host synchronisations.

On CUDA, PyTorch runs a copy from pageable host memory (``torch.as_tensor(array,
device="cuda")``, ``torch.tensor(...)``, ``host_tensor.to("cuda")`` without pinned memory)
as ``cudaMemcpyAsync`` followed by ``cudaStreamSynchronize``, and every read of a device
value on the host (``.item()``, ``.cpu()``, ``.numpy()``, ``.tolist()``, ``bool(t)``) waits
for the stream. Only a copy from pinned memory with ``non_blocking=True`` does not wait.

Tests run the real device code on torch's CPU device, where nothing waits; this mode sees
every torch call (``TorchFunctionMode``, the lowest Python-level hook) and counts the calls
that would synchronise on CUDA. Tensors made from host memory (``from_numpy``, ``as_tensor``
/ ``tensor`` without a device, ``empty(pin_memory=...)``) are "host" tensors; all others are
treated as living on the device.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_FACTORIES = {torch.as_tensor, torch.tensor}
_DEVICE_READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy,
                 torch.Tensor.cpu, torch.Tensor.__bool__, torch.Tensor.__int__,
                 torch.Tensor.__float__, torch.Tensor.__index__}
_MOVES = {torch.Tensor.to, torch.Tensor.cuda}


class HostSyncCounter(TorchFunctionMode):
    """``with HostSyncCounter() as syncs: ...``; ``syncs.count`` and ``syncs.calls``
    (what synchronised, by name)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        # id → weak reference (a WeakSet would compare tensors with ==, elementwise)
        self._host: dict[int, weakref.ref[torch.Tensor]] = {}

    def __enter__(self) -> HostSyncCounter:
        # torch.from_numpy takes no tensor and no device, so no mode sees it: wrap it here
        self._from_numpy = torch.from_numpy

        def from_numpy(ndarray: Any) -> torch.Tensor:
            tensor = self._from_numpy(ndarray)
            self._mark_host(tensor)
            return tensor

        torch.from_numpy = from_numpy
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        torch.from_numpy = self._from_numpy

    @property
    def count(self) -> int:
        return sum(self.calls.values())

    def _is_host(self, tensor: Any) -> bool:
        if not isinstance(tensor, torch.Tensor):
            return False
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def _mark_host(self, tensor: Any) -> None:
        if isinstance(tensor, torch.Tensor):
            self._host[id(tensor)] = weakref.ref(tensor)

    def __torch_function__(self, func: Callable[..., Any], types: Sequence[type],
                           args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
                           ) -> Any:
        kwargs = dict(kwargs or {})
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        if func in _FACTORIES and kwargs.get("device") is None:
            self._mark_host(result)
        elif func in _FACTORIES and not isinstance(args[0] if args else None, torch.Tensor):
            self.calls[f"{name}(host data, device=...)"] += 1  # pageable upload
        elif func is torch.empty and kwargs.get("pin_memory"):
            self._mark_host(result)
        elif func in _MOVES and args and self._is_host(args[0]):
            pinned_async = args[0].is_pinned() and kwargs.get("non_blocking", False)
            if not pinned_async:
                self.calls[f"Tensor.{name} from pageable host memory"] += 1
        elif func in _DEVICE_READS and args and not self._is_host(args[0]):
            self.calls[f"Tensor.{name} of a device tensor"] += 1
            self._mark_host(result)
        return result
