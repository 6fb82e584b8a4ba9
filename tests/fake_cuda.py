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

A stream model on top (issue 25), where the GPU is as slow as it may be: a launch
completes only when a host wait covers it (or ``gpu_catches_up()``):
- every stream carries a vector clock: a launch or a torch op issued while a stream is
  current advances it; ``wait_stream``/``wait_event`` merge the other's clock; an event
  records its stream's clock. A host wait (``Event``/``Stream``/``torch.cuda.synchronize``,
  or a device read on the current stream) completes exactly the launches that clock covers,
  and when one of them was queued by *another thread* it is noted in ``cross_waits``
  (waiter thread, launching thread): a thread's host wait waiting on another's engine work;
- the legacy default stream (handle 0) is the one current stream of every thread that made
  none current: threads that queue through it are listed in ``default_stream_threads``;
- a torch op on a stream reading a tensor that another stream wrote, without that stream
  having waited (event or stream) for the write, raises ``StreamOrderError``;
- ``Event(enable_timing=True)``; ``elapsed_time`` sums the cost (``launch_ms``, or the
  ``ms`` given to ``enqueue``) of the launches the end event is ordered after and the start
  event is not (on its stream or on streams it waited on), and raises
  (as CUDA's ``cudaErrorNotReady``) while they have not completed;
- host waits by thread and kind in ``ledger`` (thread name → Counter): explicit waits that
  block, device reads (``.cpu()``, ``.numpy()``, ``.item()``, ``.tolist()``, ``.to("cpu")``,
  ``bool()``), implicit-sync ops (``nonzero``, ``masked_select``, ``unique``, ``equal``,
  ``allclose``, boolean-mask indexing) and ``pin_memory()`` (a page-locked allocation);
  host tensors are those made by ``torch.from_numpy``, pinned ones and read-back ones;
- ``record_stream`` calls are kept in ``recorded`` (thread name, stream handle).

Install with ``install(monkeypatch)``; every stream handle is an int (``cuda_stream``), the
default stream's is 0, as in CUDA.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from tests.tensor_args import tensors_in

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
_host: dict[int, Any] = {}  # id → weakref of tensors known to live in host memory

# -- the stream model -------------------------------------------------------------------------
launch_ms = 1.0  # the GPU time of one launch, unless enqueue is told


@dataclass
class _Launch:
    position: int
    thread: str
    ms: float
    complete: bool = False


_clocks: dict[int, dict[int, int]] = {}  # handle → vector clock (handle → position)
_launches: dict[int, list[_Launch]] = {}  # handle → its launches, in order
ledger: dict[str, Counter[str]] = {}  # thread name → host waits by kind
cross_waits: list[tuple[str, str]] = []  # (waiting thread, thread that queued the work)
default_stream_threads: set[str] = set()
recorded: list[tuple[str, int]] = []  # record_stream calls: (thread, stream handle)


class StreamOrderError(RuntimeError):
    """A stream read memory another stream wrote without waiting for the write."""


def _me() -> str:
    return threading.current_thread().name


def note(kind: str) -> None:
    """One host wait of ``kind`` on this thread."""
    with _lock:
        ledger.setdefault(_me(), Counter())[kind] += 1


def thread_waits(name: str) -> Counter[str]:
    """The host waits of the thread called ``name`` (a copy)."""
    with _lock:
        return Counter(ledger.get(name, Counter()))


def _clock(handle: int) -> dict[int, int]:
    return _clocks.setdefault(handle, {})


def _advance(handle: int) -> int:
    """One more unit of work on ``handle``; its new position."""
    clock = _clock(handle)
    clock[handle] = clock.get(handle, 0) + 1
    return clock[handle]


def _merge(into: dict[int, int], other: Mapping[int, int]) -> None:
    for handle, position in other.items():
        if position > into.get(handle, 0):
            into[handle] = position


def _covered(clock: Mapping[int, int]) -> list[_Launch]:
    return [launch for handle, upto in clock.items() for launch in _launches.get(handle, ())
            if launch.position <= upto]


def _complete(clock: Mapping[int, int]) -> bool:
    """Complete what ``clock`` covers (a host wait); True when something was still running."""
    me = _me()
    with _lock:
        running = [launch for launch in _covered(clock) if not launch.complete]
        for launch in running:
            launch.complete = True
            if launch.thread != me:
                cross_waits.append((me, launch.thread))
    return bool(running)


def gpu_catches_up() -> None:
    """Time passes: every launch queued so far runs and completes (no host wait)."""
    with _lock:
        for handle in list(_queues):
            flush(handle)
        for launches in _launches.values():
            for launch in launches:
                launch.complete = True


def now() -> int:
    """A stamp for "everything queued so far"."""
    return next(_stamp)


def host_waited(stamp: int | None = None) -> None:
    """The host waited for everything up to ``stamp`` (default: everything)."""
    _seen[0] = max(_seen[0], now() if stamp is None else stamp)


def is_pinned(tensor: Any) -> bool:
    ref = _pinned.get(id(tensor))
    return ref is not None and ref() is tensor


def is_host(tensor: Any) -> bool:
    """In host memory: made by ``from_numpy``, pinned, or read back from the device."""
    ref = _host.get(id(tensor))
    return is_pinned(tensor) or (ref is not None and ref() is tensor)


def _mark_host(tensor: Any) -> Any:
    if isinstance(tensor, torch.Tensor):
        _host[id(tensor)] = weakref.ref(tensor)
    return tensor


def reset() -> None:
    global launch_ms
    with _lock:
        _queues.clear()
        _done.clear()
        _queued.clear()
        _captures.clear()
        waits.clear()
        _pinned.clear()
        _host.clear()
        _clocks.clear()
        _launches.clear()
        ledger.clear()
        cross_waits.clear()
        default_stream_threads.clear()
        recorded.clear()
        launch_ms = 1.0
        _seen[0] = now()


def _check_capture(handle: int | None) -> None:
    """CUDA refuses work from other threads while a global-mode capture runs."""
    me = threading.get_ident()
    for captured, (graph, mode, thread) in _captures.items():
        if mode == "global" and thread != me and captured != handle:
            graph.invalidated = True  # the capture fails too, when it ends
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing "
                               "(another thread captures with capture_error_mode='global')")


def enqueue(handle: int, work: Callable[[], None], ms: float | None = None) -> None:
    """Queue ``work`` on stream ``handle`` (or record it into the graph being captured);
    ``ms``: its GPU time (default ``launch_ms``)."""
    with _lock:
        capture = _captures.get(handle)
        if capture is not None:
            capture[0].work.append(work)
            return
        _check_capture(handle)
        _queues.setdefault(handle, deque()).append(work)
        _queued[handle] = _queued.get(handle, 0) + 1
        if handle == 0:
            default_stream_threads.add(_me())
        position = _advance(handle)
        _launches.setdefault(handle, []).append(
            _Launch(position, _me(), launch_ms if ms is None else ms))


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


def _written_by(tensor: Any) -> tuple[int, int] | None:
    return getattr(tensor, "_fake_cuda_write", None)


def _tag(tensor: Any, handle: int, position: int) -> None:
    if isinstance(tensor, torch.Tensor) and not is_host(tensor):
        # a tensor subclass may refuse attributes
        with contextlib.suppress(AttributeError, RuntimeError):
            tensor._fake_cuda_write = (handle, position)  # type: ignore[attr-defined]


def check_read(handle: int, tensors: Sequence[Any]) -> None:
    """Raise unless stream ``handle`` is ordered after each tensor's last write."""
    clock = _clock(handle)
    for tensor in tensors:
        written = _written_by(tensor)
        if written is not None and written[0] != handle and clock.get(written[0], 0) < written[1]:
            raise StreamOrderError(
                f"fake CUDA: stream {handle} reads a tensor {tuple(tensor.shape)} written on "
                f"stream {written[0]} without waiting for it (wait_event / wait_stream)")


class _FlushMode(TorchFunctionMode):
    """While a stream is current, a torch op runs after the work queued on it, advances the
    stream's clock, checks its inputs were written on a stream it waited for, and tags its
    results (and in-place targets) as written on this stream."""

    def __init__(self, handle: int) -> None:
        super().__init__()
        self.handle = handle

    def __torch_function__(self, func: Callable[..., Any], types: Sequence[type],
                           args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
                           ) -> Any:
        kwargs = dict(kwargs or {})
        if current_stream().cuda_stream != self.handle:  # an outer stream: not current now
            return func(*args, **kwargs)
        flush(self.handle)
        inputs = tensors_in(args, kwargs)
        with _lock:
            check_read(self.handle, inputs)
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in ("__get__", "__set__", "size", "dim", "stride", "data_ptr", "__len__",
                    "is_pinned", "element_size", "numel"):
            return result  # attribute reads: no device work
        with _lock:
            position = _advance(self.handle)
        written = [result] if isinstance(result, torch.Tensor) else [
            r for r in (result if isinstance(result, (tuple, list)) else ())
            if isinstance(r, torch.Tensor)]
        if name.endswith("_") and args and isinstance(args[0], torch.Tensor):
            written.append(args[0])  # in place
        if isinstance(kwargs.get("out"), torch.Tensor):
            written.append(kwargs["out"])
        host_in = bool(inputs) and all(is_host(t) for t in inputs)
        for tensor in written:
            if host_in and name not in ("to", "cuda", "copy_") and tensor is not args[0]:
                _mark_host(tensor)  # computed on the host from host tensors
            else:
                _tag(tensor, self.handle, position)
        return result


class FakeStream:
    def __init__(self, device: Any = None, priority: int = 0, *, handle: int | None = None
                 ) -> None:
        with _lock:
            _check_capture(None)
        self.cuda_stream = next(_handles) if handle is None else handle
        self.device = torch.device("cpu")

    def __repr__(self) -> str:
        return f"FakeStream({self.cuda_stream})"

    def _queued_through(self) -> None:
        if self.cuda_stream == 0:
            with _lock:
                default_stream_threads.add(_me())

    def wait_stream(self, other: FakeStream) -> None:
        self._queued_through()
        flush(other.cuda_stream)  # this stream's later work sees everything queued there
        with _lock:
            _merge(_clock(self.cuda_stream), _clock(other.cuda_stream))

    def wait_event(self, event: FakeEvent) -> None:
        self._queued_through()
        event._run()
        with _lock:
            _merge(_clock(self.cuda_stream), event.clock)

    def synchronize(self) -> None:
        waits.append("Stream.synchronize")
        note("Stream.synchronize")
        flush(self.cuda_stream)
        _complete(dict(_clock(self.cuda_stream)))
        host_waited()

    def query(self) -> bool:
        with _lock:
            return pending(self.cuda_stream) == 0 and all(
                launch.complete for launch in _covered(_clock(self.cuda_stream)))

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
        self.timing = enable_timing
        self.clock: dict[int, int] = {}
        self.handle: int | None = None

    def record(self, on: FakeStream | None = None) -> None:
        chosen = on or current_stream()
        chosen._queued_through()
        with _lock:
            self.mark = (chosen.cuda_stream, _queued.get(chosen.cuda_stream, 0))
            self.stamp = now()
            self.clock = dict(_clock(chosen.cuda_stream))
            self.handle = chosen.cuda_stream

    def _run(self) -> None:
        if self.mark is not None:
            flush(*self.mark)

    def query(self) -> bool:
        if self.mark is None:
            return True
        handle, upto = self.mark
        with _lock:
            return _done.get(handle, 0) >= upto and all(
                launch.complete for launch in _covered(self.clock))

    def synchronize(self) -> None:
        if self.stamp > _seen[0]:
            waits.append("Event.synchronize")
        self._run()
        if _complete(self.clock) or self.stamp > _seen[0]:
            note("Event.synchronize")
        host_waited(self.stamp)

    def wait(self, on: FakeStream | None = None) -> None:
        (on or current_stream()).wait_event(self)

    def elapsed_time(self, end: FakeEvent) -> float:
        """GPU milliseconds from this event to ``end`` (both recorded on one stream)."""
        if not (self.timing and end.timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.handle is None or end.handle is None:
            raise RuntimeError("CUDA error: device not ready (an event was never recorded)")
        if not (self.query() and end.query()):
            raise RuntimeError("CUDA error: device not ready")
        # the work the end event's stream was ordered after, that the start's was not
        # (its own launches and those of streams it waited on, e.g. an engine's)
        with _lock:
            before = {id(launch) for launch in _covered(self.clock)}
            return float(sum(launch.ms for launch in _covered(end.clock)
                             if id(launch) not in before))


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
    note("torch.cuda.synchronize")
    with _lock:
        for handle in list(_queues):
            flush(handle)
        everything: dict[int, int] = {}
        for clock in _clocks.values():
            _merge(everything, clock)
    _complete(everything)
    host_waited()


def _pinning(factory: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``factory(..., pin_memory=True)`` on torch's CPU build: unpinned memory that
    ``is_pinned`` reports as pinned (what the code under test asked for)."""

    @functools.wraps(factory)
    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        pin = kwargs.pop("pin_memory", False)
        tensor = factory(*args, **kwargs)
        if pin:
            _pinned[id(tensor)] = weakref.ref(tensor)
        return tensor

    return make


def _once(plain: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper of a torch method runs once per call: a torch function mode hands the
    method (our wrapper, by its current name) back to itself, which then runs ``plain``."""
    def decorate(wrapper: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(plain)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if getattr(_local, "inside", False):
                return plain(*args, **kwargs)
            _local.inside = True
            try:
                return wrapper(*args, **kwargs)
            finally:
                _local.inside = False

        return guarded

    return decorate


def _device_read(kind: str, tensor: torch.Tensor) -> None:
    """A read of device memory on the host: waits for the current stream (only)."""
    current_stream()._queued_through()
    handle = current_stream().cuda_stream
    with _lock:
        check_read(handle, [tensor])
    flush(handle)  # another stream's work the current one did not wait for: old data
    note(kind)
    _complete(dict(_clock(handle)))
    host_waited()


def _reading(read: Callable[..., Any], kind: str, *, copies: bool = False
             ) -> Callable[..., Any]:
    @_once(read)
    def wrapped(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if is_host(self):
            return read(self, *args, **kwargs)
        _device_read(kind, self)
        result = read(self, *args, **kwargs)
        if copies and result is self:  # the CPU test device: keep host and device apart
            result = self.clone()
        return _mark_host(result)

    return wrapped


def _to(plain: Callable[..., Any]) -> Callable[..., Any]:
    @_once(plain)
    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        # the string "cpu" is a download; a torch.device (the tests' device) an upload
        target = kwargs.get("device", args[0] if args else None)
        download = isinstance(target, str) and target == "cpu"
        upload = isinstance(target, torch.device) or (
            isinstance(target, str) and target != "cpu")
        if is_host(self) and upload:
            if not (is_pinned(self) and kwargs.get("non_blocking", False)):
                note("pageable upload")  # cudaMemcpy from pageable memory: a host wait
            result = plain(self, *args, **kwargs)
            result = self.clone() if result is self else result
            _host.pop(id(result), None)  # on the device now
            with _lock:
                _tag(result, current_stream().cuda_stream,
                     _advance(current_stream().cuda_stream))
            return result
        if is_host(self) or not download:
            return plain(self, *args, **kwargs)
        _device_read('Tensor.to("cpu")', self)
        result = plain(self, *args, **kwargs)
        return _mark_host(self.clone() if result is self else result)

    return to


def _pin(self: torch.Tensor) -> torch.Tensor:
    """A page-locked copy (cudaHostAlloc-backed: counted; torch caches the blocks)."""
    note("pin_memory")
    copy = self.clone()
    _pinned[id(copy)] = weakref.ref(copy)
    return copy


def _indexing(plain: Callable[..., Any]) -> Callable[..., Any]:
    @_once(plain)
    def getitem(self: torch.Tensor, index: Any) -> Any:
        if (isinstance(index, torch.Tensor) and index.dtype == torch.bool
                and not is_host(self)):
            _device_read("boolean-mask indexing", self)
        return plain(self, index)

    return getitem


def _syncing(plain: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """An op whose result size or value the host must know: it waits for the device."""
    @_once(plain)
    def op(*args: Any, **kwargs: Any) -> Any:
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if first is not None and not is_host(first):
            _device_read(kind, first)
        return plain(*args, **kwargs)

    return op


def _record_stream(plain: Callable[..., Any]) -> Callable[..., Any]:
    def record(self: torch.Tensor, chosen: FakeStream) -> None:
        with _lock:
            recorded.append((_me(), chosen.cuda_stream))

    return record


def synchronize_all_quietly() -> None:
    """What a device → host read implies for the data: every queued launch ran."""
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
    plain_from_numpy = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda array: _mark_host(plain_from_numpy(array)))
    for name in ("cpu", "numpy", "item", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, _reading(getattr(torch.Tensor, name),
                                                         f"Tensor.{name}", copies=name == "cpu"))
    monkeypatch.setattr(torch.Tensor, "to", _to(torch.Tensor.to))
    monkeypatch.setattr(torch.Tensor, "pin_memory", _pin)
    monkeypatch.setattr(torch.Tensor, "__getitem__", _indexing(torch.Tensor.__getitem__))
    monkeypatch.setattr(torch.Tensor, "record_stream", _record_stream(torch.Tensor.record_stream))
    for name in ("nonzero", "masked_select", "unique", "equal", "allclose"):
        monkeypatch.setattr(torch.Tensor, name, _syncing(getattr(torch.Tensor, name),
                                                         f"{name} (implicit sync)"))
        monkeypatch.setattr(torch, name, _syncing(getattr(torch, name),
                                                  f"{name} (implicit sync)"))
    plain_is_pinned = torch.Tensor.is_pinned
    monkeypatch.setattr(torch.Tensor, "is_pinned",
                        lambda self, *a: is_pinned(self) or plain_is_pinned(self, *a))
