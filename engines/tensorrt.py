"""TensorRT runtime: a serialized engine run on torch tensors, with an FP32 fallback.

TensorRT 10/11 API used (tensors by name, no binding indices): ``Runtime``,
``Runtime.deserialize_cuda_engine``, ``ICudaEngine.num_io_tensors`` / ``get_tensor_name`` /
``get_tensor_mode`` / ``get_tensor_shape`` / ``get_tensor_dtype`` /
``get_tensor_profile_shape``, ``ICudaEngine.create_execution_context``,
``IExecutionContext.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``.

This module only runs engines; building them is ``export.tensorrt``'s job, handed in as a
``build(precision) -> Path`` function by whoever opens the engine (``engines.registry``).

Threads: an ``IExecutionContext`` may be used by one thread at a time, so every calling
thread gets its own context, stream and bound buffers (the deserialized engine is shared).
``CONTEXTS_AHEAD`` contexts are made at open (so running out of memory fails the open, where
the registry falls back) and handed to the first calling threads; the opening thread keeps
none. A context a later thread cannot get (out of memory) is shared under a lock instead of
failing in the live loop. The live pipeline may swap on its process thread and its swap
worker at once.

Batches: an engine built with a batch profile (``export.tensorrt``: 1..8, opt at 1) takes
up to its profile's max faces per launch; more are run in chunks of that size. A static
engine runs in chunks of its fixed batch. ``run_torch`` checks that every feed has the
engine's trailing shape and the same number of rows (no silent broadcast).

Device memory: torch tensors allocated once per context, 256-byte aligned (TensorRT's rule
for ``set_tensor_address``, whose result is checked) and bound by ``data_ptr()``. Every
call runs on the context's own ``torch.cuda.Stream``, ordered after the caller's stream and
before it again (``wait_stream``), with no allocation and no host wait. The caller's stream
is the calling thread's own (``realtime.frame.streams``), so one thread's engine work never
orders another thread's. The numpy ``run`` uploads through pinned memory without blocking
and waits (its download) on the calling thread's stream only. No CUDA graphs: a capture
needs a per-shape warm-up enqueue and a thread-local capture, and nothing measured a gain
worth that; the code was removed (issue 25).
cuda-python/PyCUDA are not needed: torch owns the context, streams and memory.
Tests drive the same code on torch's CPU device with strict doubles of ``tensorrt`` and of
``torch.cuda``'s streams, events and graphs.

FP16 safety: each call ANDs ``torch.isfinite(out).all()`` of every chunk into a device flag
that stays False once a NaN/Inf was seen, copies it to pinned memory asynchronously and
records an event. The next call reads it only if that event has completed (``query``, never
``synchronize``: a face map's second identity in the same frame never waits for the first);
the numpy ``run`` waits anyway, reads it at once and re-runs the bad frame on FP32. The check
runs only where a fallback exists (an FP16 engine). The FP32 engine comes from
``Fp32Fallback``: built (through ``export.tensorrt.ensure_engine``'s file lock, one build at
a time on the machine) and deserialised on a background thread (its own CUDA stream): at
open for the face generator (``builds_fp32_ahead``), on the first NaN for any other model;
its contexts are made on first use (no context memory until the switch). Until it is
ready the FP16 engine keeps running; once switched, the FP16 engine's memory is released
and the FP32 engine is not checked (nothing to fall back to).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import EngineError, EngineUnavailable, TensorSpec, check_feeds
from engines.doctor_messages import say

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BACKEND = "tensorrt"
TENSORRT_HINT = "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12"
INIT_HINT = ("update the NVIDIA driver to one this TensorRT supports, or install the "
             "TensorRT wheel for your CUDA major version (tensorrt-cu12 / tensorrt-cu13)")
# Faces per engine launch: the profile the registry builds (opt: the common one-face case)
MAX_BATCH = 8
OPT_BATCH = 1
# The torch device engines run on; tests point it at the CPU device, where the same code runs
DEVICE = "cuda"
# set_tensor_address: "The pointer must have at least 256-byte alignment" (NvInferRuntime.h)
ALIGNMENT = 256
# Execution contexts made at open (and for the FP32 engine, on its build thread); a second
# calling thread gets its own, made on first use
CONTEXTS_AHEAD = 1

# precision ("fp16" / "fp32") → the engine file for it, built or taken from the cache
BuildFunction = Callable[[str], Path]

# TensorRT DataType member name → torch dtype name, numpy dtype name
_DTYPES: dict[str, tuple[str, str]] = {
    "FLOAT": ("float32", "float32"),
    "HALF": ("float16", "float16"),
    "BF16": ("bfloat16", "float32"),
    "INT32": ("int32", "int32"),
    "INT64": ("int64", "int64"),
    "INT8": ("int8", "int8"),
    "UINT8": ("uint8", "uint8"),
    "BOOL": ("bool", "bool"),
}


def load_tensorrt() -> ModuleType:
    """The real ``tensorrt`` module, or EngineUnavailable saying why not and how to install.

    ``tensorrt-stubs`` (the type stubs, a dev dependency) installs a bare ``tensorrt`` folder
    that imports as an empty namespace package: that is "not installed" too.
    """
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineUnavailable(BACKEND, say("tensorrt-not-installed", error=exc),
                                TENSORRT_HINT) from exc
    if not hasattr(tensorrt, "Builder") or not hasattr(tensorrt, "__version__"):
        raise EngineUnavailable(BACKEND, say("tensorrt-stubs-only"), TENSORRT_HINT)
    return tensorrt


def construct(trt: Any, factory: str, *args: Any) -> Any:
    """``trt.<factory>(*args)`` (``Runtime``, ``Builder``) with TensorRT's initialisation
    failure turned into EngineUnavailable: when TensorRT cannot initialise CUDA (a driver
    too old for it, no usable GPU) the bindings raise ``TypeError: ... factory function
    returned nullptr`` or return None."""
    try:
        made = getattr(trt, factory)(*args)
    except TypeError as exc:
        raise EngineUnavailable(
            BACKEND, say("tensorrt-init-failed", version=getattr(trt, "__version__", "?"),
                         factory=factory, error=exc), INIT_HINT) from exc
    if made is None:
        raise EngineUnavailable(
            BACKEND, say("tensorrt-init-none", version=getattr(trt, "__version__", "?"),
                         factory=factory), INIT_HINT)
    return made


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (package, CUDA, GPU, initialisation), with how to fix it;
    None if it can. Creates one ``trt.Runtime`` to prove TensorRT initialises on this GPU;
    called by the registry and ``doctor``."""
    try:
        trt = load_tensorrt()
    except EngineUnavailable as exc:
        return f"{exc.reason} ({exc.hint})" if exc.hint else exc.reason
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no NVIDIA driver/GPU"
        return say("tensorrt-no-gpu", build=build)
    try:
        construct(trt, "Runtime", trt.Logger(trt.Logger.WARNING))
    except EngineUnavailable as exc:
        return f"{exc.reason} ({exc.hint})"
    return None


def torch_dtype_name(trt_dtype_name: str) -> str:
    """torch dtype name for a TensorRT ``DataType`` member name (``"HALF"`` → ``"float16"``)."""
    try:
        return _DTYPES[trt_dtype_name][0]
    except KeyError as exc:
        raise EngineError(f"TensorRT tensor type: expected one of {sorted(_DTYPES)}, "
                          f"got {trt_dtype_name}") from exc


def numpy_dtype_name(trt_dtype_name: str) -> str:
    """numpy dtype name of a TensorRT ``DataType`` (BF16 → float32: numpy has no bfloat16;
    ``run`` returns it widened)."""
    torch_dtype_name(trt_dtype_name)  # the same clear error for an unknown type
    return _DTYPES[trt_dtype_name][1]


def _dims(dims: Any) -> tuple[int, ...]:
    """A ``trt.Dims`` (indexable, sized; not a tuple) as a tuple of ints."""
    return tuple(int(dims[k]) for k in range(len(dims)))


def aligned_empty(dims: tuple[int, ...], dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """An uninitialised tensor whose first element sits on a ``ALIGNMENT``-byte boundary
    (``set_tensor_address``: "The pointer must have at least 256-byte alignment"). CUDA's
    caching allocator already aligns to 512 bytes; torch's CPU allocator to 64."""
    import torch

    count = math.prod(dims)
    item = dtype.itemsize
    raw = torch.empty(count + max(1, ALIGNMENT // item), dtype=dtype, device=device)
    offset = (-raw.data_ptr() % ALIGNMENT) // item
    return raw[offset:offset + count].view(dims)


@contextlib.contextmanager
def _own_stream() -> Iterator[None]:
    """A CUDA stream of its own for a background thread (none without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        yield
        return
    with torch.cuda.stream(torch.cuda.Stream()):
        yield


class _Loaded:
    """One deserialized engine (shared by every thread) and its tensors' layout."""

    def __init__(self, engine_path: Path, device: torch.device) -> None:
        trt = load_tensorrt()
        self.path = Path(engine_path)
        self.device = device
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = construct(trt, "Runtime", self.logger)
        try:
            blob = self.path.read_bytes()
        except OSError as exc:  # an EngineError: the registry falls back
            raise EngineError(f"{engine_path}: the engine file could not be read "
                              f"({type(exc).__name__}: {exc})") from exc
        engine = self.runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise EngineError(f"{engine_path}: TensorRT could not deserialize the engine "
                              "(built by another TensorRT version or GPU? delete it to rebuild)")
        self.engine = engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        modes = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if modes[n]]
        self.output_names = [n for n in names if not modes[n]]
        kinds = {n: engine.get_tensor_dtype(n).name for n in names}
        self.dtypes = {n: torch_dtype_name(kind) for n, kind in kinds.items()}
        self.numpy_dtypes = {n: numpy_dtype_name(kind) for n, kind in kinds.items()}
        static = {n: _dims(engine.get_tensor_shape(n)) for n in self.input_names}
        self.profiled = any(d < 0 for dims in static.values() for d in dims)
        if self.profiled:
            # get_tensor_profile_shape → (min, opt, max); the batch range is the same for all
            self.max_shapes = {n: _dims(engine.get_tensor_profile_shape(n, 0)[2])
                               for n in self.input_names}
        else:
            self.max_shapes = static
        first = next(iter(self.max_shapes.values()), (1,))
        self.max_batch = int(first[0]) if first else 1
        self._lock = threading.Lock()

    def create_context(self) -> Any:
        with self._lock:  # contexts are made from one engine: one at a time
            context = self.engine.create_execution_context()
        if context is None:
            raise EngineError(f"{self.path}: TensorRT could not create an execution context "
                              "(out of GPU memory? close other GPU programs)")
        return context


class _Context:
    """One execution context with its stream, bound buffers and finite flag.
    Used by one thread at a time (``lock``); normally by one thread only."""

    def __init__(self, loaded: _Loaded, *, check_finite: bool) -> None:
        import torch

        self.loaded = loaded
        self.lock = threading.Lock()
        self.shared = False  # set when a second thread had to share it
        self.check_finite = check_finite
        self.context = loaded.create_context()
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.batch = 0
        try:
            self.stream = torch.cuda.Stream(loaded.device)
            # buffers allocated on this stream: the caching allocator then reuses their
            # memory only after this stream's work (no use after free across streams)
            with torch.cuda.stream(self.stream):
                self.set_batch(loaded.max_batch)  # bind the largest shapes: outputs follow
                for name in loaded.input_names:
                    self._bind(name, loaded.max_shapes[name], self.inputs)
                for name in loaded.output_names:
                    dims = _dims(self.context.get_tensor_shape(name))
                    if any(d < 0 for d in dims):
                        raise EngineError(f"{loaded.path}: output {name} has no shape after "
                                          f"the input shapes were set ({dims})")
                    self._bind(name, dims, self.outputs)
                # NaN/Inf seen since this context began (sticky: a later finite call
                # never hides an earlier bad one), and its host copy
                self.finite = torch.ones((), dtype=torch.bool, device=loaded.device)
            self.finite_host = torch.ones((), dtype=torch.bool,
                                          pin_memory=torch.cuda.is_available())
            self.flag_ready = torch.cuda.Event()
            self.flag_pending = False
        except EngineError:
            raise
        except RuntimeError as exc:  # torch.OutOfMemoryError, a stream torch cannot make
            raise EngineError(f"{loaded.path}: could not set up an execution context on "
                              f"{loaded.device} ({type(exc).__name__}: {exc}); out of GPU "
                              "memory? close other GPU programs") from exc

    def _bind(self, name: str, dims: tuple[int, ...], into: dict[str, torch.Tensor]) -> None:
        import torch

        tensor = aligned_empty(dims, getattr(torch, self.loaded.dtypes[name]),
                               self.loaded.device)
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise EngineError(f"{self.loaded.path}: TensorRT refused the address of {name} "
                              "(set_tensor_address returned False; see the TensorRT log)")
        into[name] = tensor

    def set_batch(self, batch: int) -> None:
        """Run the next launches on ``batch`` rows via ``set_input_shape`` (which returns
        False outside the profile); outputs fill the first rows of the bound buffers."""
        if batch == self.batch:
            return
        loaded = self.loaded
        if not 1 <= batch <= loaded.max_batch:
            raise EngineError(f"{loaded.path}: batch must be 1..{loaded.max_batch}, got {batch}")
        if loaded.profiled:
            for name in loaded.input_names:
                dims = (batch, *loaded.max_shapes[name][1:])
                if not self.context.set_input_shape(name, dims):
                    raise EngineError(f"{loaded.path}: TensorRT refused input shape {dims} "
                                      f"for {name} (outside the engine's profile)")
        elif batch != loaded.max_batch:
            raise EngineError(f"{loaded.path}: static engine takes batch {loaded.max_batch}, "
                              f"got {batch}")
        self.batch = batch

    def _launch(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"{self.loaded.path}: execute_async_v3 failed (see the TensorRT "
                              "log)")

    def execute(self) -> None:
        self._launch()

    def retire(self) -> None:
        """Wait for this context's queued work, then let its memory go."""
        with self.lock:
            self.stream.synchronize()


class _State:
    """The engine in use (FP16, or the FP32 fallback) and its contexts: ``spare`` ones made
    ahead (at open, or on the fallback's build thread) and one per calling thread."""

    def __init__(self, loaded: _Loaded, *, check_finite: bool,
                 contexts: int = CONTEXTS_AHEAD) -> None:
        self.loaded = loaded
        self.check_finite = check_finite
        self.lock = threading.Lock()
        self.retired = False  # the engine was switched away from: no new contexts
        self.spare = [self.new_context() for _ in range(contexts)]
        self.by_thread: dict[int, _Context] = {}

    def new_context(self) -> _Context:
        return _Context(self.loaded, check_finite=self.check_finite)

    def reclaim(self) -> None:
        """Contexts of threads that have ended go back to ``spare`` (a restarted swap worker
        reuses its predecessor's); call with ``lock`` held."""
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [i for i in self.by_thread if i not in alive]:
            context = self.by_thread.pop(ident)
            if not context.shared and all(c is not context for c in self.by_thread.values()):
                self.spare.append(context)

    def any_context(self) -> _Context:
        with self.lock:
            return (self.spare or list(self.by_thread.values()))[0]

    def retire(self, *, background: bool = False) -> None:
        """No new contexts from now on; each context's memory goes once its queued work is
        done: waited for here, or (``background``) on a thread of its own, so the thread
        that switched engines never waits for another thread's engine work."""
        with self.lock:
            self.retired = True
            contexts = {id(c): c for c in (*self.spare, *self.by_thread.values())}
            self.spare, self.by_thread = [], {}

        def release() -> None:
            with _own_stream():
                for context in contexts.values():
                    context.retire()

        if background:
            threading.Thread(target=release, name=f"retire-{self.loaded.path.stem}",
                             daemon=True).start()
        else:
            release()


class Fp32Fallback:
    """The FP32 engine, built (and, with ``prepare``, deserialised with its contexts) on a
    background thread, so a NaN frame never waits for it: calling this object returns the
    engine file once ready, None before (or when the build failed, logged once).

    ``eager``: the build starts now (the generator: its NaN frames are what users see);
    otherwise it starts on the first call, i.e. the first NaN (``engines.registry`` picks).
    Builds go through ``export.tensorrt.ensure_engine``, which holds a file lock: one build
    at a time on this machine, shared with ``export tensorrt``."""

    def __init__(self, build: Callable[[], Path], name: str = "", *,
                 prepare: Callable[[Path], Any] | None = None, eager: bool = True) -> None:
        self._build = build
        self._prepare = prepare
        self._name = name
        self._path: Path | None = None
        self.ready: Any = None  # what ``prepare`` made of the engine file
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"fp32-build-{name}",
                                        daemon=True)
        self._start_lock = threading.Lock()
        self.started = False
        if eager:
            self.start()

    def start(self) -> None:
        with self._start_lock:
            if not self.started:
                self.started = True
                self._thread.start()

    def _run(self) -> None:
        try:
            with _own_stream():  # the build thread's CUDA work orders no other thread's
                path = self._build()
                if self._prepare is not None:
                    self.ready = self._prepare(path)
            self._path = path
        except Exception as exc:  # reported, never raised into the frame path
            self.error = exc
            log.warning("%s: building the FP32 fallback engine failed: %s", self._name, exc)

    def wait(self, timeout: float | None = None) -> Path | None:
        """Start if needed and block until the build ends (tests, ``bench``)."""
        self.start()
        self._thread.join(timeout)
        return self._path

    def __call__(self) -> Path | None:
        if not self.started:
            self.start()  # on demand: the first NaN starts the build
            return None
        return self._path if not self._thread.is_alive() else None


class TensorRTEngine:
    """Engine protocol over a TensorRT engine; ``run_torch`` keeps everything on the device.

    ``fallback`` gives the FP32 engine file once it exists (None while it does not); it is
    asked only after the FP16 engine produced NaN/Inf, and must not block. An
    ``Fp32Fallback`` made with ``prepare=engine.prepare_fallback`` hands over the engine
    already deserialised with its contexts, so the switch does no work on the frame thread.
    Without a fallback no finite check runs (nothing could be done about a NaN)."""

    backend = BACKEND

    def __init__(self, engine_path: Path, *, fallback: Callable[[], Path | None] | None = None,
                 name: str = "", device: str | torch.device = "cuda") -> None:
        import torch

        self.name = name or Path(engine_path).stem
        self.device = torch.device(device)
        self.fallback = fallback
        self._switch_lock = threading.Lock()
        self._waiting_told = False
        self._shared_told = False
        self.fell_back = False
        self._state = _State(_Loaded(Path(engine_path), self.device), check_finite=True)
        self.max_batch = self._state.loaded.max_batch
        self.inputs = self._specs(self._state.loaded.input_names)
        self.outputs = self._specs(self._state.loaded.output_names)

    def _specs(self, names: list[str]) -> tuple[TensorSpec, ...]:
        """Specs of the engine's tensors (numpy dtype names); the batch axis is symbolic
        ("batch"): any number of faces is accepted and run in chunks of ``max_batch``."""
        bound = self._state.any_context()
        shapes = {n: tuple(t.shape) for n, t in (*bound.inputs.items(), *bound.outputs.items())}
        return tuple(TensorSpec(n, ("batch", *shapes[n][1:]), self._state.loaded.numpy_dtypes[n])
                     for n in names)

    def prepare_fallback(self, path: Path) -> _State:
        """The FP32 engine deserialised (runs on the fallback's build thread); its contexts
        are made by the threads that use it, after the switch, so it holds no context
        memory beside the FP16 engine's. No finite check on it: there is nothing further
        to fall back to."""
        return _State(_Loaded(Path(path), self.device), check_finite=False, contexts=0)

    def _context(self, state: _State) -> _Context:
        """This thread's context: its own, a spare one made ahead, a new one, or, when no
        new one can be made (out of GPU memory), another thread's shared under its lock."""
        me = threading.get_ident()
        if state.retired:  # switched to FP32 since this thread read the state
            return self._context(self._state)
        with state.lock:
            context = state.by_thread.get(me)
            if context is None:
                state.reclaim()
            if context is None and state.spare:
                context = state.by_thread[me] = state.spare.pop()
            if context is not None:
                return context
        try:
            context = state.new_context()
        except EngineError as exc:
            with state.lock:
                if not state.by_thread:
                    raise
                context = next(iter(state.by_thread.values()))
                context.shared = True
                state.by_thread[me] = context
            if not self._shared_told:
                self._shared_told = True
                log.warning("%s: no execution context for another thread (%s); threads share "
                            "one, one call at a time", self.name, exc)
            return context
        with state.lock:
            state.by_thread[me] = context
        return context

    # -- device-resident path ----------------------------------------------------------------

    def _check_torch_feeds(self, loaded: _Loaded, feeds: Mapping[str, torch.Tensor]) -> int:
        """The batch of ``feeds``: every input present with the engine's trailing shape and
        the same number of rows (a (1, 512) identity never broadcasts over 4 faces)."""
        if set(feeds) != set(loaded.input_names):
            raise EngineError(f"{self.name}: inputs: expected {sorted(loaded.input_names)}, "
                              f"got {sorted(feeds)}")
        rows: dict[str, int] = {}
        for name in loaded.input_names:
            shape = tuple(feeds[name].shape)
            want = loaded.max_shapes[name][1:]
            if len(shape) != len(want) + 1 or shape[1:] != want:
                raise EngineError(f"{self.name}: {name}: expected shape (batch, "
                                  f"{', '.join(map(str, want))}), got {shape}")
            rows[name] = shape[0]
        if len(set(rows.values())) != 1 or 0 in rows.values():
            raise EngineError(f"{self.name}: every input needs the same number of rows (≥ 1), "
                              f"got {rows}")
        return next(iter(rows.values()))

    def run_torch(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``feeds`` (tensors on the engine's device) into this thread's bound inputs,
        run, return the outputs. Up to ``max_batch`` rows they are the bound buffers (valid
        until this thread's next call); more rows run in chunks into new tensors. The
        outputs are ready on the caller's current stream, which is made to wait on the
        engine's: no host synchronisation (the NaN flag of an earlier call is read only
        once its event has completed: ``Event.query``, never ``synchronize``)."""
        self._poll()
        state = self._state
        batch = self._check_torch_feeds(state.loaded, feeds)
        context = self._context(state)
        with context.lock:
            return self._run(context, feeds, batch)

    def _run(self, context: _Context, feeds: Mapping[str, torch.Tensor],
             batch: int) -> dict[str, torch.Tensor]:
        import torch

        step = context.loaded.max_batch
        whole = batch <= step and not context.shared
        # the NaN/Inf check only where something can be done about it (an FP32 fallback)
        check = context.check_finite and self.fallback is not None
        caller = torch.cuda.current_stream(self.device)
        parts: list[dict[str, torch.Tensor]] = []
        for start in range(0, batch, step):
            stop = min(batch, start + step)
            rows = stop - start
            context.stream.wait_stream(caller)  # feeds, and readers of the last outputs
            with torch.cuda.stream(context.stream):
                # a static engine runs its fixed batch: a partial last chunk fills the
                # first rows (the rest holds older rows, whose outputs are not returned)
                context.set_batch(rows if context.loaded.profiled else step)
                for name, target in context.inputs.items():
                    target[:rows].copy_(feeds[name][start:stop], non_blocking=True)
                context.execute()
                outputs = {name: t[:rows] for name, t in context.outputs.items()}
                if check:
                    torch.logical_and(context.finite, self._all_finite(outputs),
                                      out=context.finite)
            caller.wait_stream(context.stream)
            for tensor in outputs.values():  # read on the caller's stream: kept until then
                tensor.record_stream(caller)
            if whole:
                parts.append(outputs)
            else:  # copied on the caller's stream before the next chunk overwrites them
                parts.append({k: v.clone() for k, v in outputs.items()})
        if check:
            with torch.cuda.stream(context.stream):
                context.finite_host.copy_(context.finite, non_blocking=True)
                context.flag_ready.record(context.stream)
            context.flag_pending = True
        if len(parts) == 1:
            return parts[0]
        return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}

    @staticmethod
    def _all_finite(outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        import torch

        return torch.stack([torch.isfinite(t).all() for t in outputs.values()]).all()

    def _poll(self) -> bool:
        """Read this thread's last finite flag if its copy has completed (``query``; never
        a wait). True when the engine switched to FP32 (here or on another thread)."""
        state = self._state
        context = state.by_thread.get(threading.get_ident())
        if context is None or not context.flag_pending or not context.flag_ready.query():
            return False
        context.flag_pending = False
        if bool(context.finite_host.item()):  # pinned host memory: no device wait
            return False
        return self._switch_to_fp32(state)

    def _switch_to_fp32(self, state: _State) -> bool:
        with self._switch_lock:
            if self._state is not state:
                return True  # another thread switched already: re-run on the new engine
            if self.fallback is None:
                return False
            path = self.fallback()
            if path is None:
                if not self._waiting_told:
                    log.warning("%s: the FP16 TensorRT engine produced NaN/Inf; the FP32 "
                                "engine is not built yet, FP16 keeps running until it is",
                                self.name)
                    self._waiting_told = True
                return False
            log.warning("%s: the FP16 TensorRT engine produced NaN/Inf (black or green faces); "
                        "switching to the FP32 engine for this model", self.name)
            ready = getattr(self.fallback, "ready", None)
            if isinstance(ready, _State) and ready.loaded.path == Path(path):
                new = ready  # deserialised on the build thread
            else:  # a bare build function: load it here, once
                new = self.prepare_fallback(Path(path))
            self._state = new
            self.max_batch = new.loaded.max_batch
            self.fell_back = True
        state.retire(background=True)  # the FP16 engine's memory, once its work is done
        return True

    # -- Engine protocol (numpy) -------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        check_feeds(self.inputs, feeds)
        pinned = torch.cuda.is_available()
        device_feeds = {}
        for name, array in feeds.items():
            host = torch.from_numpy(np.ascontiguousarray(array))
            if pinned:  # page-locked (torch's caching host allocator): the copy queues
                host = host.pin_memory()
            device_feeds[name] = host.to(self.device, non_blocking=pinned)
        outputs = self.run_torch(device_feeds)
        context = self._state.by_thread.get(threading.get_ident())
        if context is not None and context.flag_pending:
            context.flag_ready.synchronize()  # the numpy path waits for the results anyway
        if self._poll():  # this very frame was bad: re-run it on the FP32 engine
            outputs = self.run_torch(device_feeds)
        return {k: v.float().cpu().numpy() if v.dtype == torch.bfloat16 else
                v.cpu().numpy().copy() for k, v in outputs.items()}

    def close(self) -> None:
        self._state.retire()


# Model kinds (engines.models) whose FP32 fallback engine is built as soon as the FP16 one
# opens: the face generators and the enhancer, whose NaN frames are the visible black/green
# faces. Every other FP16 engine (detector, parser, encoders) builds its fallback only on its
# first NaN frame.
FP32_AHEAD_KINDS = frozenset({"generator", "swapper", "enhancer"})


# Faces per launch (the batch profile's max) by model kind: what each row's activations
# allow on a 6–8 GB card beside the others (issue 25). The generators take a frame's faces
# in one launch; the parser (BiSeNet at 512², ~20 MB a row) and the enhancer (GFPGAN at
# 512², the largest activations) fewer; the detector sees one frame at a time.
MAX_BATCH_BY_KIND = {"generator": 8, "swapper": 8, "encoder": 8, "landmarks": 8,
                     "parser": 4, "enhancer": 2, "detector": 1}


def model_kind(onnx_path: Path) -> str | None:
    """The ``engines.models`` kind of ``onnx_path``, by its model folder, its stem or its
    official file name; None for a file the table does not know."""
    from engines.models import FILE_NAMES, MODELS

    path = Path(onnx_path)
    for name in (path.parent.name, path.stem, FILE_NAMES.get(path.name, "")):
        info = MODELS.get(name)
        if info is not None:
            return str(info.kind)
    return None


def max_batch_for(onnx_path: Path) -> int:
    """The batch profile's max for ``onnx_path`` (``MAX_BATCH`` for an unknown file)."""
    return MAX_BATCH_BY_KIND.get(model_kind(onnx_path) or "", MAX_BATCH)


def builds_fp32_ahead(onnx_path: Path) -> bool:
    """Whether ``onnx_path`` is a face generator's file (see ``model_kind``)."""
    return model_kind(onnx_path) in FP32_AHEAD_KINDS


def open_tensorrt_engine(onnx_path: Path, *, build: BuildFunction, precision: str = "fp16",
                         fp32_ahead: bool | None = None) -> TensorRTEngine:
    """Open the engine ``build(precision)`` returns (built or cached by the caller's
    builder, normally ``export.tensorrt.ensure_engine``). With FP16 an FP32 fallback is
    attached: built at once on a background thread when ``fp32_ahead`` (default: when
    ``builds_fp32_ahead(onnx_path)``, the generator), else on the first NaN frame; either
    way deserialised off the frame thread.
    EngineUnavailable when tensorrt, CUDA or a GPU is missing or TensorRT cannot
    initialise (the registry then tries the next backend)."""
    reason = unavailable_reason()
    if reason is not None:
        raise EngineUnavailable(BACKEND, reason)
    name = Path(onnx_path).stem
    engine = TensorRTEngine(build(precision), name=name, device=DEVICE)
    if precision == "fp16":
        ahead = builds_fp32_ahead(onnx_path) if fp32_ahead is None else fp32_ahead
        engine.fallback = Fp32Fallback(lambda: build("fp32"), name,
                                       prepare=engine.prepare_fallback, eager=ahead)
    return engine
