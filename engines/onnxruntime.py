"""ONNX Runtime engine: CPU everywhere, CUDA when onnxruntime-gpu provides it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engines.base import EngineError, EngineUnavailable, ModelFileError, TensorSpec, check_feeds
from engines.doctor_messages import say

log = logging.getLogger(__name__)

CUDA_HINT = ("pip uninstall onnxruntime && pip install onnxruntime-gpu "
             "(needs an NVIDIA GPU, driver and matching CUDA/cuDNN libraries)")

# ONNX Runtime's type strings -> numpy dtype names.
_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8",
    "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (str(d) if d is not None else "?")
                  for d in arg.shape)
    return TensorSpec(arg.name, shape, _DTYPES.get(arg.type, arg.type))


def cuda_unavailable_reason() -> str | None:
    """None when onnxruntime offers CUDAExecutionProvider, else why not."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return say("onnxruntime-not-installed", detail=exc)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return say("onnxruntime-no-cuda", providers=", ".join(ort.get_available_providers()))
    return None


class OnnxRuntimeEngine:
    """Runs one ONNX file with ONNX Runtime; ``backend`` is onnxruntime-cpu or -cuda."""

    def __init__(self, path: Path, *,
                 device: Literal["cpu", "cuda", "directml", "coreml"] = "cpu",
                 threads: int | None = None, precision: str = "fp32") -> None:
        self.path = Path(path)
        self.backend = f"onnxruntime-{device}"
        if device not in ("cpu", "cuda", "directml", "coreml"):
            raise ValueError(f"device: expected 'cpu', 'cuda', 'directml' or 'coreml', "
                             f"got {device!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads: expected >= 1 or None, got {threads}")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(self.backend, f"onnxruntime is not installed ({exc})",
                                    "pip install onnxruntime") from exc
        if device == "cuda":
            reason = cuda_unavailable_reason()
            if reason is not None:
                raise EngineUnavailable(self.backend, reason, CUDA_HINT)
        gpu_provider = None
        if device in ("directml", "coreml"):
            from engines import ort_providers

            gpu_provider = ort_providers.PROVIDERS[device]
            reason = ort_providers.unavailable_reason(device)
            if reason is not None:
                raise EngineUnavailable(self.backend, reason, gpu_provider.hint)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such model file")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; ORT's warnings are noise to a user
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
            # Spinning workers burn their cores between runs; with a thread count the caller
            # shares the CPU with its own threads (capture, detection), so let them sleep.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list[Any] = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "DEFAULT"}))
        if gpu_provider is not None:
            providers.insert(0, ort_providers.provider_entry(device, precision))
            ort_providers.configure_session(device, options)
        try:
            self._session: Any = ort.InferenceSession(str(self.path), options,
                                                      providers=providers)
        except Exception as exc:  # ORT raises its own pybind classes (InvalidProtobuf, Fail)
            if device == "cuda" and "CUDA" in str(exc) and "Protobuf" not in str(exc):
                raise EngineUnavailable(self.backend, f"CUDA provider failed: {exc}",
                                        CUDA_HINT) from exc
            raise ModelFileError(f"{self.path}: ONNX Runtime cannot load this model "
                                 f"({type(exc).__name__}: {exc})") from exc
        active = self._session.get_providers()
        if gpu_provider is not None and (not active or active[0] != gpu_provider.name):
            self._session = None
            raise EngineUnavailable(self.backend, f"{gpu_provider.name} could not be "
                                    f"initialised (session got {active})", gpu_provider.hint)
        if device == "cuda" and (not active or active[0] != "CUDAExecutionProvider"):
            # onnxruntime-gpu silently falls back to CPU when CUDA/cuDNN fail to load.
            self._session = None
            raise EngineUnavailable(self.backend, "CUDAExecutionProvider could not be "
                                    f"initialised (session got {active}): no GPU, driver or "
                                    "CUDA/cuDNN libraries", CUDA_HINT)
        self.providers = tuple(active)
        # shared by every run; ``cancel`` sets its terminate flag to end runs in flight
        self._run_options = ort.RunOptions()
        self.threads = threads
        self.inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._session.get_outputs())
        log.debug("%s: %s on %s", self.path.name, self.backend, self.providers)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise EngineError(f"{self.path}: engine is closed")
        check_feeds(self.inputs, feeds)
        for spec in self.inputs:
            got = np.asarray(feeds[spec.name]).dtype
            if got.name != spec.dtype:
                raise EngineError(f"{spec.name}: expected dtype {spec.dtype}, got {got.name}")
        names = [spec.name for spec in self.outputs]
        try:
            values = self._session.run(names, {k: np.asarray(v) for k, v in feeds.items()},
                                       run_options=self._run_options)
        except Exception as exc:
            raise EngineError(f"{self.path.name}: inference failed ({exc})") from exc
        return dict(zip(names, values, strict=True))

    def session_config(self, key: str) -> str | None:
        """The session's value for an ONNX Runtime config ``key`` (None when unset)."""
        if self._session is None:
            raise EngineError(f"{self.path}: engine is closed")
        options = self._session.get_session_options()
        try:
            return str(options.get_session_config_entry(key))
        except Exception:  # ORT raises a plain RuntimeError-like pybind error when unset
            return None

    def cancel(self) -> None:
        """End the runs in progress (they raise ``EngineError``); later runs work as
        before. A stop must not wait for a seconds-long CPU run to finish."""
        import onnxruntime as ort

        running, self._run_options = self._run_options, ort.RunOptions()
        running.terminate = True

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> OnnxRuntimeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OnnxRuntimeEngine({self.path.name!r}, backend={self.backend!r})"
