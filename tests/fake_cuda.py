"""A stand-in for ``torch.cuda``'s streams, events and graphs over torch's CPU device.

What it models (the parts of CUDA's ordering that the TensorRT runtime relies on):
- work handed to a stream (``enqueue(handle, fn)``: what the fake ``execute_async_v3`` does)
  runs *later*, in order, when something needs it: a torch op issued while that stream is
  current (inside ``torch.cuda.stream(s)``), another stream's ``wait_stream``/``wait_event``
  on it, ``Event.synchronize``, ``Stream.synchronize`` or ``torch.cuda.synchronize``. Code
  that reads a launch's outputs without ordering itself after the launch reads stale memory;
- ``Event.record`` stamps the work queued so far; ``Event.query`` is False while that work
  has not run; ``Event.synchronize`` runs it;
- ``CUDAGraph`` capture (``torch.cuda.graph(g, stream=s, capture_error_mode=...)``) records
  the launches queued on ``s`` instead of running them, with the shapes bound at capture;
  ``replay`` queues them on the current stream. With ``capture_error_mode="global"`` (torch's
  default) any CUDA call from another thread during a capture raises there and invalidates
  the capture, which then fails as it ends, as CUDA does; ``"thread_local"`` allows it;
- ``pin_memory=True`` (``torch.empty``/``zeros``/``ones``), which torch's CPU build refuses,
  gives ordinary memory that ``Tensor.is_pinned`` reports as pinned;
- which host waits really block: ``waits`` lists each ``Stream.synchronize``,
  ``torch.cuda.synchronize`` and each ``Event.synchronize`` of an event recorded after the
  host last waited (``host_waited``; a download is such a wait).

Install with ``install(monkeypatch)``; every stream handle is an int (``cuda_stream``), the
default stream's is 0, as in CUDA.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_lock = threading.RLock()
_queues: dict[int, deque[Callable[[], None]]] = {}
_done: dict[int, int] = {}  # handle → launches run so far
_queued: dict[int, int] = {}  # handle → launches queued so far
_captures: dict[int, tuple[FakeGraph, str, int]] = {}  # handle → (graph, mode, thread)
_handles = itertools.count(1)
_local = threading.local()
# the host waits that really block, by kind (tests.cuda_copies reads them): a wait for work
# recorded after the host last waited; waiting again for what the host already saw finish
# (an upload's staging event behind the last download) costs nothing on a GPU either
waits: list[str] = []
_stamp = itertools.count(1)
_seen = [0]  # the last stamp the host is known to have waited past
_pinned: dict[int, Any] = {}  # id → weakref of tensors made with pin_memory=True


def now() -> int:
    """A stamp for "everything queued so far"."""
    return next(_stamp)


def host_waited(stamp: int | None = None) -> None:
    """The host waited for everything up to ``stamp`` (default: everything)."""
    _seen[0] = max(_seen[0], now() if stamp is None else stamp)


def is_pinned(tensor: Any) -> bool:
    ref = _pinned.get(id(tensor))
    return ref is not None and ref() is tensor


def reset() -> None:
    with _lock:
        _queues.clear()
        _done.clear()
        _queued.clear()
        _captures.clear()
        waits.clear()
        _pinned.clear()
        _seen[0] = now()


def _check_capture(handle: int | None) -> None:
    """CUDA refuses work from other threads while a global-mode capture runs."""
    me = threading.get_ident()
    for captured, (graph, mode, thread) in _captures.items():
        if mode == "global" and thread != me and captured != handle:
            graph.invalidated = True  # the capture fails too, when it ends
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing "
                               "(another thread captures with capture_error_mode='global')")


def enqueue(handle: int, work: Callable[[], None]) -> None:
    """Queue ``work`` on stream ``handle`` (or record it into the graph being captured)."""
    with _lock:
        capture = _captures.get(handle)
        if capture is not None:
            capture[0].work.append(work)
            return
        _check_capture(handle)
        _queues.setdefault(handle, deque()).append(work)
        _queued[handle] = _queued.get(handle, 0) + 1


def flush(handle: int, upto: int | None = None) -> None:
    """Run the work queued on ``handle`` (up to launch number ``upto``), in order."""
    with _lock:
        queue = _queues.get(handle)
        while queue and (upto is None or _done.get(handle, 0) < upto):
            work = queue.popleft()
            _done[handle] = _done.get(handle, 0) + 1
            work()


def pending(handle: int) -> int:
    with _lock:
        return len(_queues.get(handle, ()))


class _FlushMode(TorchFunctionMode):
    """While a stream is current, a torch op runs after the work queued on it."""

    def __init__(self, handle: int) -> None:
        super().__init__()
        self.handle = handle

    def __torch_function__(self, func: Callable[..., Any], types: Sequence[type],
                           args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
                           ) -> Any:
        flush(self.handle)
        return func(*args, **(kwargs or {}))


class FakeStream:
    def __init__(self, device: Any = None, priority: int = 0, *, handle: int | None = None
                 ) -> None:
        with _lock:
            _check_capture(None)
        self.cuda_stream = next(_handles) if handle is None else handle
        self.device = torch.device("cpu")

    def wait_stream(self, other: FakeStream) -> None:
        flush(other.cuda_stream)  # this stream's later work sees everything queued there

    def wait_event(self, event: FakeEvent) -> None:
        event._run()

    def synchronize(self) -> None:
        waits.append("Stream.synchronize")
        flush(self.cuda_stream)
        host_waited()

    def query(self) -> bool:
        return pending(self.cuda_stream) == 0

    def record_event(self, event: FakeEvent | None = None) -> FakeEvent:
        event = event or FakeEvent()
        event.record(self)
        return event


_DEFAULT = FakeStream(handle=0)


def current_stream(device: Any = None) -> FakeStream:
    return getattr(_local, "current", _DEFAULT)


@contextlib.contextmanager
def stream(chosen: FakeStream | None) -> Iterator[None]:
    if chosen is None:
        yield
        return
    previous = current_stream()
    _local.current = chosen
    mode = _FlushMode(chosen.cuda_stream)
    try:
        with mode:
            yield
    finally:
        _local.current = previous


class FakeEvent:
    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False) -> None:
        self.mark: tuple[int, int] | None = None
        self.stamp = 0

    def record(self, on: FakeStream | None = None) -> None:
        chosen = on or current_stream()
        with _lock:
            self.mark = (chosen.cuda_stream, _queued.get(chosen.cuda_stream, 0))
            self.stamp = now()

    def _run(self) -> None:
        if self.mark is not None:
            flush(*self.mark)

    def query(self) -> bool:
        if self.mark is None:
            return True
        handle, upto = self.mark
        with _lock:
            return _done.get(handle, 0) >= upto

    def synchronize(self) -> None:
        if self.stamp > _seen[0]:
            waits.append("Event.synchronize")
        self._run()
        host_waited(self.stamp)

    def wait(self, on: FakeStream | None = None) -> None:
        self._run()


class FakeGraph:
    def __init__(self) -> None:
        self.work: list[Callable[[], None]] = []
        self.mode = ""
        self.invalidated = False

    def replay(self) -> None:
        handle = current_stream().cuda_stream
        for work in self.work:
            enqueue(handle, work)


@contextlib.contextmanager
def graph(cuda_graph: FakeGraph, pool: Any = None, stream: FakeStream | None = None,
          capture_error_mode: str = "global") -> Iterator[None]:
    chosen = stream or FakeStream()
    with _lock:
        _check_capture(None)
        _captures[chosen.cuda_stream] = (cuda_graph, capture_error_mode, threading.get_ident())
    cuda_graph.mode = capture_error_mode
    previous = current_stream()
    _local.current = chosen
    try:
        yield
    finally:
        _local.current = previous
        with _lock:
            del _captures[chosen.cuda_stream]
    if cuda_graph.invalidated:
        raise RuntimeError("CUDA error: operation failed due to a previous error during "
                           "capture (cudaErrorStreamCaptureInvalidated)")


def synchronize(device: Any = None) -> None:
    waits.append("torch.cuda.synchronize")
    with _lock:
        for handle in list(_queues):
            flush(handle)
    host_waited()


def _pinning(factory: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``factory(..., pin_memory=True)`` on torch's CPU build: unpinned memory that
    ``is_pinned`` reports as pinned (what the code under test asked for)."""
    import weakref

    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        pin = kwargs.pop("pin_memory", False)
        tensor = factory(*args, **kwargs)
        if pin:
            _pinned[id(tensor)] = weakref.ref(tensor)
        return tensor

    return make


def _reading(read: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(read)
    def wrapped(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if not is_pinned(self):
            synchronize_all_quietly()
        return read(self, *args, **kwargs)

    return wrapped


def synchronize_all_quietly() -> None:
    """What a device → host read implies: every queued launch ran; the host saw it."""
    with _lock:
        for handle in list(_queues):
            flush(handle)
    host_waited()


def install(monkeypatch: Any) -> None:
    """Make ``torch.cuda`` these doubles (``is_available`` True) for one test."""
    reset()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", current_stream)
    monkeypatch.setattr(torch.cuda, "stream", stream)
    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    for name in ("empty", "zeros", "ones"):
        monkeypatch.setattr(torch, name, _pinning(getattr(torch, name)))
    for name in ("cpu", "item", "tolist"):  # a read of device memory waits for the device
        monkeypatch.setattr(torch.Tensor, name, _reading(getattr(torch.Tensor, name)))
    plain_is_pinned = torch.Tensor.is_pinned
    monkeypatch.setattr(torch.Tensor, "is_pinned",
                        lambda self, *a: is_pinned(self) or plain_is_pinned(self, *a))
