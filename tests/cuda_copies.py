"""A double of torch's host ↔ device traffic that counts the host waits a CUDA run makes.

On CUDA, PyTorch runs a copy from pageable host memory (``torch.as_tensor(array,
device="cuda")``, ``torch.tensor(...)``, ``host_tensor.to("cuda")``, ``device.copy_(host)``
without pinned memory and ``non_blocking=True``) as ``cudaMemcpyAsync`` followed by
``cudaStreamSynchronize``, and every read of a device value on the host (``.item()``,
``.cpu()``, ``.numpy()``, ``.tolist()``, ``bool(t)``) waits for the stream. Explicit waits:
``Event.synchronize``, ``Stream.synchronize``, ``torch.cuda.synchronize``.

Tests run the real device code on torch's CPU device, where nothing waits; this mode sees
every torch call (``TorchFunctionMode``, the lowest Python-level hook) and counts the calls
that would synchronise on CUDA. Host tensors: made from host memory (``from_numpy``,
``as_tensor``/``tensor`` without a device), by a factory with ``pin_memory=True``, read back
from the device (``.cpu()``), or computed from host tensors; all others (a factory without a
device included: the CPU test device is the default one) are treated as living on the
device. Explicit
waits are counted through ``tests.fake_cuda`` when it stands in for ``torch.cuda`` (only the
waits that block: see there), else by wrapping the real ``torch.cuda`` calls (an event or
stream wait that ``query()`` says would block, and every ``torch.cuda.synchronize``).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from tests import fake_cuda
from tests.tensor_args import tensors_in

_FACTORIES = {torch.as_tensor, torch.tensor}
_HOST_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.arange,
                   torch.linspace, torch.eye, torch.rand, torch.randn}
# by name: tests.fake_cuda wraps some of them (a read waits for queued launches)
_DEVICE_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__",
                 "__index__"}
# by name: tests.fake_cuda wraps Tensor.to (a download to "cpu" is counted there)
_MOVES = {"to", "cuda"}


class HostSyncCounter(TorchFunctionMode):
    """``with HostSyncCounter() as syncs: ...``; ``syncs.count`` and ``syncs.calls``
    (what synchronised, by name)."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: Counter[str] = Counter()
        # id → weak reference (a WeakSet would compare tensors with ==, elementwise)
        self._host: dict[int, weakref.ref[torch.Tensor]] = {}
        self._restore: list[tuple[Any, str, Any]] = []
        self._fake_waits = 0

    @property
    def calls(self) -> Counter[str]:
        counts = Counter(self._calls)
        if self._fake:
            counts.update(fake_cuda.waits[self._fake_waits:])
        return counts

    def __enter__(self) -> HostSyncCounter:
        # torch.from_numpy takes no tensor and no device, so no mode sees it: wrap it here
        self._patch(torch, "from_numpy", lambda plain: lambda array: self._marked(plain(array)))
        self._fake = torch.cuda.Event is fake_cuda.FakeEvent
        if self._fake:
            self._fake_waits = len(fake_cuda.waits)
        else:
            self._patch(torch.cuda, "synchronize", lambda plain: self._counting(
                plain, "torch.cuda.synchronize", lambda *a, **k: True))
            for owner, name in ((torch.cuda.Event, "Event"), (torch.cuda.Stream, "Stream")):
                self._patch(owner, "synchronize", self._waits_for(f"{name}.synchronize"))
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        for owner, name, plain in reversed(self._restore):
            setattr(owner, name, plain)
        self._restore.clear()

    def _patch(self, owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        plain = getattr(owner, name)
        self._restore.append((owner, name, plain))
        setattr(owner, name, wrap(plain))

    def _waits_for(self, label: str) -> Callable[[Any], Any]:
        """Counts an event's or stream's wait when ``query()`` says it would block."""
        def wrap(plain: Callable[..., Any]) -> Callable[..., Any]:
            return self._counting(plain, label, lambda obj: not obj.query())

        return wrap

    def _counting(self, plain: Callable[..., Any], label: str,
                  blocks: Callable[..., bool]) -> Callable[..., Any]:
        def wait(*args: Any, **kwargs: Any) -> Any:
            if blocks(*args, **kwargs):
                self._calls[label] += 1
            return plain(*args, **kwargs)

        return wait

    @property
    def count(self) -> int:
        return sum(self.calls.values())

    def _is_host(self, tensor: Any) -> bool:
        if not isinstance(tensor, torch.Tensor):
            return False
        if fake_cuda.is_pinned(tensor):
            return True
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def _is_pinned(self, tensor: torch.Tensor) -> bool:
        return fake_cuda.is_pinned(tensor) or bool(tensor.is_pinned())

    def _marked(self, tensor: Any) -> Any:
        if isinstance(tensor, torch.Tensor):
            self._host[id(tensor)] = weakref.ref(tensor)
        elif isinstance(tensor, (tuple, list)):
            for item in tensor:
                self._marked(item)
        return tensor

    def _device_read(self, name: str) -> None:
        self._calls[f"Tensor.{name} of a device tensor"] += 1
        if self._fake:
            fake_cuda.host_waited()

    def __torch_function__(self, func: Callable[..., Any], types: Sequence[type],
                           args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
                           ) -> Any:
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", str(func))
        if func is torch.Tensor.copy_ and len(args) >= 2:
            target, source = args[0], args[1]
            if self._is_host(source) and not self._is_host(target) and not (
                    self._is_pinned(source) and kwargs.get("non_blocking", False)):
                self._calls["Tensor.copy_ from pageable host memory"] += 1
            elif self._is_host(target) and not self._is_host(source) and not (
                    self._is_pinned(target) and kwargs.get("non_blocking", False)):
                self._device_read("copy_")  # a device → host copy the host waits for
            return func(*args, **kwargs)
        result = func(*args, **kwargs)
        if func in _FACTORIES and kwargs.get("device") is None:
            self._marked(result)
        elif func in _FACTORIES and not isinstance(args[0] if args else None, torch.Tensor):
            self._calls[f"{name}(host data, device=...)"] += 1  # pageable upload
        elif func in _HOST_FACTORIES and kwargs.get("pin_memory"):
            self._marked(result)
        elif name in _MOVES and args and self._is_host(args[0]):
            if _moves_to_device(args, kwargs):
                if not (self._is_pinned(args[0]) and kwargs.get("non_blocking", False)):
                    self._calls[f"Tensor.{name} from pageable host memory"] += 1
                if result is args[0]:  # the CPU test device: keep host and device apart
                    result = result.clone()
            else:
                self._marked(result)  # a dtype change on the host stays on the host
        elif _is_read(func, args) and not self._is_host(args[0]):
            self._device_read(name)
            self._marked(result)
        elif _is_read(func, args):
            self._marked(result)
        elif any(self._is_host(a) for a in tensors_in(args, kwargs)):
            self._marked(result)  # computed from host tensors: on the host
        return result


def _is_read(func: Callable[..., Any], args: Sequence[Any]) -> bool:
    return (getattr(func, "__name__", "") in _DEVICE_READS and bool(args)
            and isinstance(args[0], torch.Tensor))


def _moves_to_device(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether ``Tensor.to(...)``/``.cuda()`` names a device (``.to(torch.float32)`` does
    not; on the CPU test device any named device stands for the GPU)."""
    if kwargs.get("device") is not None:
        return True
    for value in args[1:]:
        if isinstance(value, (str, torch.device, torch.Tensor)):
            return True
    return len(args) == 1 and not kwargs.get("dtype")  # .cuda() / .to() with no dtype
