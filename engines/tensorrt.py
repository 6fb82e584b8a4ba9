"""TensorRT runtime: a serialized engine run on torch CUDA tensors, with an FP32 fallback.

TensorRT 10/11 API used (tensors by name, no binding indices): ``Runtime``,
``Runtime.deserialize_cuda_engine``, ``ICudaEngine.num_io_tensors`` / ``get_tensor_name`` /
``get_tensor_mode`` / ``get_tensor_shape`` / ``get_tensor_dtype`` /
``get_tensor_profile_shape``, ``ICudaEngine.create_execution_context``,
``IExecutionContext.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``.

Device memory: torch CUDA tensors allocated once per engine and bound by ``data_ptr()``; every
call runs on one dedicated ``torch.cuda.Stream`` with no allocation and no host
synchronisation (``run_torch``); optionally the launch is captured once into a CUDA graph and
replayed. cuda-python/PyCUDA are not needed: torch owns the context, stream and memory (PyCUDA's
own context would fight torch's).

FP16 safety: after each call ``torch.isfinite(out).all()`` is computed on the device. The
numpy ``run`` reads it right away (it synchronises anyway to copy the result) and re-runs the
frame on the FP32 engine; ``run_torch`` copies the flag to pinned memory asynchronously and
reads it at the start of the next call, so at most one frame is bad before the switch. The
switch is logged once and is permanent for this engine object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from engines.base import EngineError, EngineUnavailable, TensorSpec, check_feeds

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BACKEND = "tensorrt"
TENSORRT_HINT = "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12"

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


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (package, CUDA, GPU), with how to fix it; None if it can.
    Cheap: imports tensorrt and torch only; called by the registry and ``doctor``."""
    try:
        load_tensorrt()
    except EngineUnavailable as exc:
        return f"{exc.reason} ({exc.hint})" if exc.hint else exc.reason
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no NVIDIA driver/GPU"
        return (f"no CUDA GPU is visible to torch ({build}; TensorRT needs an NVIDIA GPU and a "
                "CUDA build of torch: pip install torch --index-url "
                "https://download.pytorch.org/whl/cu126)")
    return None


def torch_dtype_name(trt_dtype_name: str) -> str:
    """torch dtype name for a TensorRT ``DataType`` member name (``"HALF"`` → ``"float16"``)."""
    try:
        return _DTYPES[trt_dtype_name][0]
    except KeyError as exc:
        raise EngineError(f"TensorRT tensor type: expected one of {sorted(_DTYPES)}, "
                          f"got {trt_dtype_name}") from exc


class _Bound:
    """One deserialized engine with its context, stream and preallocated tensors."""

    def __init__(self, engine_path: Path, *, use_cuda_graph: bool) -> None:
        import tensorrt as trt
        import torch

        self.path = engine_path
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if engine is None:
            raise EngineError(f"{engine_path}: TensorRT could not deserialize the engine "
                              "(built by another TensorRT version or GPU? delete it to rebuild)")
        self.engine = engine
        self.context = engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.profiled = False
        # inputs first: with a batch profile the output shapes follow from the input shapes
        for name in sorted(names, key=lambda n: not is_input[n]):
            if is_input[name]:
                dims = engine.get_tensor_shape(name)
                if any(dims[k] < 0 for k in range(len(dims))):
                    # batch profile: bind its max (export.tensorrt builds opt = max)
                    dims = engine.get_tensor_profile_shape(name, 0)[2]
                    self.context.set_input_shape(name, dims)
                    self.profiled = True
            else:
                dims = self.context.get_tensor_shape(name)
            shape = [dims[k] for k in range(len(dims))]
            dtype = getattr(torch, torch_dtype_name(engine.get_tensor_dtype(name).name))
            tensor = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, tensor.data_ptr())
            (self.inputs if is_input[name] else self.outputs)[name] = tensor
        self.max_batch = next(iter(self.inputs.values())).shape[0] if self.inputs else 1
        self.batch = self.max_batch
        self.graph: torch.cuda.CUDAGraph | None = None
        if use_cuda_graph:
            self._capture()

    def set_batch(self, batch: int) -> None:
        """Run the next calls on ``batch`` rows (≤ the profile's max) via ``set_input_shape``;
        outputs are written to the first rows of the preallocated buffers."""
        if batch == self.batch:
            return
        if not self.profiled or not 1 <= batch <= self.max_batch:
            raise EngineError(f"{self.path}: batch must be 1..{self.max_batch} for this engine "
                              f"(profiled: {self.profiled}), got {batch}")
        for name, tensor in self.inputs.items():
            self.context.set_input_shape(name, (batch, *tensor.shape[1:]))
        self.batch = batch

    def _launch(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"{self.path}: execute_async_v3 failed (see the TensorRT log)")

    def _capture(self) -> None:
        import torch

        # One ordinary launch first: TensorRT defers some allocations to the first enqueue,
        # which must not happen inside a capture.
        self._launch()
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self._launch()
        self.graph = graph

    def execute(self) -> None:
        """Launch on ``self.stream`` (the caller has made it current); the graph was captured
        at the full batch, so a smaller batch launches normally."""
        if self.graph is not None and self.batch == self.max_batch:
            self.graph.replay()
        else:
            self._launch()


class TensorRTEngine:
    """Engine protocol over a TensorRT engine; ``run_torch`` keeps everything on the GPU."""

    backend = BACKEND

    def __init__(self, engine_path: Path, *, fallback: Callable[[], Path] | None = None,
                 use_cuda_graph: bool = False, name: str = "") -> None:
        import torch

        self.name = name or Path(engine_path).stem
        self._use_cuda_graph = use_cuda_graph
        self._fallback = fallback
        self._bound = _Bound(Path(engine_path), use_cuda_graph=use_cuda_graph)
        self._finite_host = torch.ones((), dtype=torch.bool).pin_memory()
        self._done = torch.cuda.Event()
        self._pending_check: torch.cuda.Event | None = None
        self.fell_back = False
        self.inputs = self._specs(self._bound.inputs)
        self.outputs = self._specs(self._bound.outputs)

    def _specs(self, tensors: Mapping[str, torch.Tensor]) -> tuple[TensorSpec, ...]:
        """Specs of the bound tensors; a profiled batch axis is symbolic ("batch")."""
        def dims(t: torch.Tensor) -> tuple[int | str, ...]:
            shape: tuple[int | str, ...] = tuple(t.shape)
            return ("batch", *shape[1:]) if self._bound.profiled else shape

        return tuple(TensorSpec(name, dims(t), str(t.dtype).removeprefix("torch."))
                     for name, t in tensors.items())

    # -- device-resident path ----------------------------------------------------------------

    def run_torch(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``feeds`` (CUDA tensors) into the bound inputs, run, return the bound outputs
        (valid until the next call; they are ready on the engine's stream, which the caller's
        current stream is made to wait on). No allocation, no host synchronisation."""
        import torch

        self._check_previous()
        bound = self._bound
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        bound.set_batch(batch)
        caller = torch.cuda.current_stream()
        bound.stream.wait_stream(caller)  # feeds were produced on the caller's stream
        with torch.cuda.stream(bound.stream):
            for name, target in bound.inputs.items():
                target[:batch].copy_(feeds[name], non_blocking=True)
            bound.execute()
            outputs = {name: t[:batch] for name, t in bound.outputs.items()}
            finite = torch.stack([torch.isfinite(t).all() for t in outputs.values()]).all()
            self._finite_host.copy_(finite, non_blocking=True)
            self._done.record(bound.stream)  # reused: the previous record was waited on above
        self._pending_check = self._done
        caller.wait_stream(bound.stream)
        return outputs

    def _check_previous(self) -> bool:
        """Read the previous call's finite flag (its event has long completed in a live loop;
        ``synchronize`` on a completed event costs nothing). True when it switched to FP32."""
        event, self._pending_check = self._pending_check, None
        if event is None:
            return False
        event.synchronize()
        return not bool(self._finite_host.item()) and self._switch_to_fp32()

    def _switch_to_fp32(self) -> bool:
        if self._fallback is None or self.fell_back:
            return False
        log.warning("%s: the FP16 TensorRT engine produced NaN/Inf (black or green faces); "
                    "switching to the FP32 engine for this model", self.name)
        self._bound = _Bound(self._fallback(), use_cuda_graph=self._use_cuda_graph)
        self.fell_back = True
        return True

    # -- Engine protocol (numpy) -------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        check_feeds(self.inputs, feeds)
        device_feeds = {k: torch.from_numpy(np.ascontiguousarray(v)).to("cuda")
                        for k, v in feeds.items()}
        outputs = self._run_checked(device_feeds)
        return {k: v.float().cpu().numpy() if v.dtype == torch.bfloat16 else v.cpu().numpy()
                for k, v in outputs.items()}

    def _run_checked(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs = self.run_torch(feeds)
        if self._check_previous():  # the numpy path waits anyway: check this very frame
            outputs = self.run_torch(feeds)  # and re-run it on the FP32 engine
        return outputs

    def close(self) -> None:
        self._pending_check = None
        self._bound.graph = None


def open_tensorrt_engine(onnx_path: Path, *, cache_dir: Path, precision: str = "fp16",
                         use_cuda_graph: bool = False, max_batch: int = 1) -> TensorRTEngine:
    """Build or reuse the cached engine for ``onnx_path`` and open it. With FP16 the FP32
    engine is built lazily, only if the FP16 one ever outputs NaN/Inf. EngineUnavailable when
    tensorrt, CUDA or a GPU is missing (the registry then tries the next backend)."""
    reason = unavailable_reason()
    if reason is not None:
        raise EngineUnavailable(BACKEND, reason)
    from export.tensorrt import ensure_engine

    def build(which: str) -> Path:
        return ensure_engine(Path(onnx_path), Path(cache_dir), precision=which,
                             max_batch=max_batch)

    fallback = (lambda: build("fp32")) if precision == "fp16" else None
    return TensorRTEngine(build(precision), fallback=fallback, use_cuda_graph=use_cuda_graph,
                          name=Path(onnx_path).stem)
