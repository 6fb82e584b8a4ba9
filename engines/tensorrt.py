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
The live pipeline may swap on its process thread and on its swap worker at once.

Batches: an engine built with a batch profile (``export.tensorrt``: 1..8, opt at 1) takes
up to its profile's max faces per launch; more are run in chunks of that size. A static
engine runs in chunks of its fixed batch.

Device memory: torch tensors allocated once per context and bound by ``data_ptr()``; on CUDA
every call runs on the context's own ``torch.cuda.Stream`` with no allocation and no host
synchronisation (``run_torch``); optionally the launch is captured once into a CUDA graph.
cuda-python/PyCUDA are not needed: torch owns the context, stream and memory. The same code
runs on torch's CPU device (tests drive it with a strict stand-in for ``tensorrt``).

FP16 safety: after each call ``torch.isfinite(out).all()`` is computed on the device. The
numpy ``run`` reads it right away and re-runs the frame on the FP32 engine; ``run_torch``
copies the flag to pinned memory asynchronously and reads it at the start of the thread's
next call. The FP32 engine is built ahead of time (``export tensorrt`` builds it with the
FP16 one; otherwise a background thread starts at open), so a NaN frame never waits for a
build: until the FP32 engine is ready, the FP16 one keeps running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import EngineError, EngineUnavailable, TensorSpec, check_feeds

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
        raise EngineUnavailable(BACKEND, f"TensorRT is not installed: no tensorrt package ({exc})",
                                TENSORRT_HINT) from exc
    if not hasattr(tensorrt, "Builder") or not hasattr(tensorrt, "__version__"):
        raise EngineUnavailable(
            BACKEND, "TensorRT is not installed (only its type stubs, tensorrt-stubs, are)",
            TENSORRT_HINT)
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
            BACKEND, f"TensorRT {getattr(trt, '__version__', '?')} is installed but could not "
            f"initialise CUDA (trt.{factory} failed: {exc})", INIT_HINT) from exc
    if made is None:
        raise EngineUnavailable(
            BACKEND, f"TensorRT {getattr(trt, '__version__', '?')} is installed but could not "
            f"initialise CUDA (trt.{factory} returned None)", INIT_HINT)
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
        return (f"no CUDA GPU is visible to torch ({build}; TensorRT needs an NVIDIA GPU and a "
                "CUDA build of torch: pip install torch --index-url "
                "https://download.pytorch.org/whl/cu126)")
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


def _dims(dims: Any) -> tuple[int, ...]:
    return tuple(int(dims[k]) for k in range(len(dims)))


class _Loaded:
    """One deserialized engine (shared by every thread) and its tensors' layout."""

    def __init__(self, engine_path: Path, device: torch.device) -> None:
        trt = load_tensorrt()
        self.path = Path(engine_path)
        self.device = device
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = construct(trt, "Runtime", self.logger)
        engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineError(f"{engine_path}: TensorRT could not deserialize the engine "
                              "(built by another TensorRT version or GPU? delete it to rebuild)")
        self.engine = engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        modes = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if modes[n]]
        self.output_names = [n for n in names if not modes[n]]
        self.dtypes = {n: torch_dtype_name(engine.get_tensor_dtype(n).name) for n in names}
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
    """One thread's execution context with its stream and preallocated tensors."""

    def __init__(self, loaded: _Loaded, *, use_cuda_graph: bool) -> None:
        import torch

        self.loaded = loaded
        self.context = loaded.create_context()
        self.cuda = loaded.device.type == "cuda"
        self.stream = torch.cuda.Stream(loaded.device) if self.cuda else None
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.batch = 0
        self.set_batch(loaded.max_batch)  # bind the largest shapes: outputs follow inputs
        for name in loaded.input_names:
            self._bind(name, loaded.max_shapes[name], self.inputs)
        for name in loaded.output_names:
            dims = _dims(self.context.get_tensor_shape(name))
            if any(d < 0 for d in dims):
                raise EngineError(f"{loaded.path}: output {name} has no shape after the "
                                  f"input shapes were set ({dims})")
            self._bind(name, dims, self.outputs)
        self.graph: torch.cuda.CUDAGraph | None = None
        if use_cuda_graph and self.cuda:
            self._capture()
        # the finite flag of the last call, read at the start of the next one
        self.finite_host = torch.ones((), dtype=torch.bool,
                                      pin_memory=self.cuda)
        self.done = torch.cuda.Event() if self.cuda else None
        self.pending = False

    def _bind(self, name: str, dims: tuple[int, ...], into: dict[str, torch.Tensor]) -> None:
        import torch

        dtype = getattr(torch, self.loaded.dtypes[name])
        tensor = torch.empty(dims, dtype=dtype, device=self.loaded.device)
        self.context.set_tensor_address(name, tensor.data_ptr())
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
        handle = self.stream.cuda_stream if self.stream is not None else 0
        if not self.context.execute_async_v3(handle):
            raise EngineError(f"{self.loaded.path}: execute_async_v3 failed (see the TensorRT "
                              "log)")

    def _capture(self) -> None:
        import torch

        assert self.stream is not None
        # One ordinary launch first: TensorRT defers some allocations to the first enqueue,
        # which must not happen inside a capture.
        self._launch()
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self._launch()
        self.graph = graph

    def execute(self) -> None:
        """Launch (the graph was captured at the full batch; a smaller one launches)."""
        if self.graph is not None and self.batch == self.loaded.max_batch:
            self.graph.replay()
        else:
            self._launch()


class Fp32Fallback:
    """The FP32 engine, built on a background thread as soon as this object is made, so a
    NaN frame never waits for a build: calling it returns the engine file when it is ready,
    None while it is still building (or when the build failed, which is logged once)."""

    def __init__(self, build: Callable[[], Path], name: str = "") -> None:
        self._build = build
        self._name = name
        self._path: Path | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"fp32-build-{name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._path = self._build()
        except Exception as exc:  # reported, never raised into the frame path
            self.error = exc
            log.warning("%s: building the FP32 fallback engine failed: %s", self._name, exc)

    def wait(self, timeout: float | None = None) -> Path | None:
        """Block until the build ends (tests, ``bench``); the engine file or None."""
        self._thread.join(timeout)
        return self._path

    def __call__(self) -> Path | None:
        return self._path if not self._thread.is_alive() else None


class TensorRTEngine:
    """Engine protocol over a TensorRT engine; ``run_torch`` keeps everything on the device.

    ``fallback`` gives the FP32 engine file once it exists (None while it does not); it is
    asked only after the FP16 engine produced NaN/Inf, and must not block."""

    backend = BACKEND

    def __init__(self, engine_path: Path, *, fallback: Callable[[], Path | None] | None = None,
                 use_cuda_graph: bool = False, name: str = "",
                 device: str | torch.device = "cuda") -> None:
        import torch

        self.name = name or Path(engine_path).stem
        self.device = torch.device(device)
        self._use_cuda_graph = use_cuda_graph
        self.fallback = fallback
        self._loaded = _Loaded(Path(engine_path), self.device)
        self._local = threading.local()
        self._switch_lock = threading.Lock()
        self._waiting_told = False
        self.fell_back = False
        self.max_batch = self._loaded.max_batch
        self._context()  # fail now (no context: out of memory), not on the first frame
        self.inputs = self._specs(self._loaded.input_names)
        self.outputs = self._specs(self._loaded.output_names)

    def _specs(self, names: list[str]) -> tuple[TensorSpec, ...]:
        """Specs of the engine's tensors; the batch axis is symbolic ("batch"): any number
        of faces is accepted and run in chunks of ``max_batch``."""
        bound = self._context()
        shapes = {n: tuple(t.shape) for n, t in (*bound.inputs.items(), *bound.outputs.items())}
        return tuple(TensorSpec(n, ("batch", *shapes[n][1:]), self._loaded.dtypes[n])
                     for n in names)

    def _context(self) -> _Context:
        """This thread's execution context (made on first use, and again after a switch)."""
        context: _Context | None = getattr(self._local, "context", None)
        loaded = self._loaded
        if context is None or context.loaded is not loaded:
            context = _Context(loaded, use_cuda_graph=self._use_cuda_graph)
            self._local.context = context
        return context

    # -- device-resident path ----------------------------------------------------------------

    def run_torch(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``feeds`` (tensors on the engine's device) into this thread's bound inputs,
        run, return the outputs. Up to ``max_batch`` rows they are the bound buffers (valid
        until this thread's next call); more rows run in chunks into new tensors. On CUDA
        the outputs are ready on the engine's stream, which the caller's current stream is
        made to wait on: no host synchronisation."""
        import torch

        self._check_previous()
        context = self._context()
        batch = int(next(iter(feeds.values())).shape[0]) if feeds else 1
        step = context.loaded.max_batch
        if batch <= step:
            return self._run_chunk(context, feeds, 0, batch)
        parts = [{k: v.clone() for k, v in
                  self._run_chunk(context, feeds, start, min(batch, start + step)).items()}
                 for start in range(0, batch, step)]
        return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}

    def _run_chunk(self, context: _Context, feeds: Mapping[str, torch.Tensor], start: int,
                   stop: int) -> dict[str, torch.Tensor]:
        import torch

        rows = stop - start
        context.set_batch(rows)
        if not context.cuda:
            for name, target in context.inputs.items():
                target[:rows].copy_(feeds[name][start:stop])
            context.execute()
            outputs = {name: t[:rows] for name, t in context.outputs.items()}
            context.finite_host.copy_(self._all_finite(outputs))
            context.pending = True
            return outputs
        assert context.stream is not None and context.done is not None
        caller = torch.cuda.current_stream(self.device)
        context.stream.wait_stream(caller)  # feeds were produced on the caller's stream
        with torch.cuda.stream(context.stream):
            for name, target in context.inputs.items():
                target[:rows].copy_(feeds[name][start:stop], non_blocking=True)
            context.execute()
            outputs = {name: t[:rows] for name, t in context.outputs.items()}
            context.finite_host.copy_(self._all_finite(outputs), non_blocking=True)
            context.done.record(context.stream)
        context.pending = True
        caller.wait_stream(context.stream)
        return outputs

    @staticmethod
    def _all_finite(outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        import torch

        return torch.stack([torch.isfinite(t).all() for t in outputs.values()]).all()

    def _check_previous(self) -> bool:
        """Read this thread's previous finite flag (its event has long completed in a live
        loop; ``synchronize`` on a completed event costs nothing). True when it switched."""
        context: _Context | None = getattr(self._local, "context", None)
        if context is None or not context.pending:
            return False
        context.pending = False
        if context.done is not None:
            context.done.synchronize()
        return not bool(context.finite_host.item()) and self._switch_to_fp32()

    def _switch_to_fp32(self) -> bool:
        with self._switch_lock:
            if self.fell_back:
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
            self._loaded = _Loaded(path, self.device)
            self.max_batch = self._loaded.max_batch
            self.fell_back = True
            return True

    # -- Engine protocol (numpy) -------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        check_feeds(self.inputs, feeds)
        device_feeds = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
                        for k, v in feeds.items()}
        outputs = self.run_torch(device_feeds)
        if self._check_previous():  # the numpy path waits anyway: check this very frame
            outputs = self.run_torch(device_feeds)  # and re-run it on the FP32 engine
        return {k: v.float().cpu().numpy() if v.dtype == torch.bfloat16 else
                v.cpu().numpy().copy() for k, v in outputs.items()}

    def close(self) -> None:
        context: _Context | None = getattr(self._local, "context", None)
        if context is not None:
            context.pending = False
            context.graph = None
        self._local = threading.local()


def open_tensorrt_engine(onnx_path: Path, *, build: BuildFunction, precision: str = "fp16",
                         use_cuda_graph: bool = False) -> TensorRTEngine:
    """Open the engine ``build(precision)`` returns (built or cached by the caller's
    builder, normally ``export.tensorrt.ensure_engine``). With FP16 the FP32 engine is built
    at once on a background thread (a cache hit when ``export tensorrt`` made it), so the
    switch after a NaN frame never waits for a build. EngineUnavailable when tensorrt, CUDA
    or a GPU is missing or TensorRT cannot initialise (the registry then tries the next
    backend)."""
    reason = unavailable_reason()
    if reason is not None:
        raise EngineUnavailable(BACKEND, reason)
    name = Path(onnx_path).stem
    engine = TensorRTEngine(build(precision), use_cuda_graph=use_cuda_graph, name=name,
                            device=DEVICE)
    if precision == "fp16":
        engine.fallback = Fp32Fallback(lambda: build("fp32"), name)
    return engine
