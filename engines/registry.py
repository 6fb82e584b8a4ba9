"""Pick a runtime for an ONNX file by ordered preference and availability.

``auto`` tries TensorRT, then ONNX Runtime on CUDA, then on the CPU. A backend that cannot
run here (``EngineUnavailable``) or fails to build the engine (``EngineError``) is skipped
with its reason; when none is left, ``NoEngineAvailable`` lists every reason. A broken model
file (``ModelFileError``) is raised at once: no other backend would do better with it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from engines.base import (
    Engine,
    EngineError,
    EngineUnavailable,
    ModelFileError,
    NoEngineAvailable,
)
from engines.doctor_messages import say

log = logging.getLogger(__name__)

# OpenVINO comes after ONNX Runtime CPU: measured side by side on this project's 2-core
# machine (bench/bench_runtimes.py, docs/performance.md) it was not faster, so ``auto`` uses
# it only where ONNX Runtime cannot run the model; name it to choose it.
# DirectML (Windows) and CoreML (macOS) are ONNX Runtime providers (engines/ort_providers.py).
BACKENDS = ("tensorrt", "onnxruntime-cuda", "onnxruntime-directml", "onnxruntime-coreml",
            "onnxruntime-cpu", "openvino")
PREFERENCES = ("auto", *BACKENDS)

TENSORRT_HINT = ("pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12 "
                 "cuda-python (TensorRT comes from NVIDIA's index; needs an NVIDIA GPU)")
TENSORRT_MISSING = say("tensorrt-support-missing", hint=TENSORRT_HINT)


def _tensorrt_module() -> ModuleType:
    """``engines.tensorrt`` or EngineUnavailable; imported only when asked for."""
    try:
        return importlib.import_module("engines.tensorrt")
    except ModuleNotFoundError as exc:
        if exc.name in ("engines.tensorrt", "tensorrt"):
            raise EngineUnavailable("tensorrt", TENSORRT_MISSING) from exc
        raise EngineUnavailable("tensorrt", say("tensorrt-support-broken", error=exc),
                                TENSORRT_HINT) from exc
    except ImportError as exc:
        raise EngineUnavailable("tensorrt", say("tensorrt-support-broken", error=exc),
                                TENSORRT_HINT) from exc
    except OSError as exc:  # a DLL that would not load (Windows: WinError 1114, 126)
        raise EngineUnavailable("tensorrt", say("tensorrt-library-failed", error=exc),
                                TENSORRT_HINT) from exc


def _tensorrt_reason() -> str | None:
    try:
        module = _tensorrt_module()
    except EngineUnavailable as exc:
        return str(exc.reason)
    # The GPU module may report its own availability (package, driver, GPU).
    for attr in ("unavailable_reason", "tensorrt_unavailable_reason"):
        check = getattr(module, attr, None)
        if callable(check):
            reason = check()
            return None if reason is None else str(reason)
    if importlib.util.find_spec("tensorrt") is None:
        return TENSORRT_MISSING
    try:
        import torch

        if not torch.cuda.is_available():
            return say("tensorrt-no-cuda")
    except ImportError:
        pass
    except OSError as exc:  # torch's DLLs failed to load (c10.dll: WinError 1114)
        return say("torch-library-failed", error=exc)
    return None


def tensorrt_builder(onnx_path: Path, cache_dir: Path, max_batch: int,
                     opt_batch: int) -> Callable[[str], Path]:
    """The build function the TensorRT runtime is handed (it never imports the builder):
    precision → the cached engine for ``onnx_path``, built on a miss. The batch profile is
    the one ``export tensorrt --max-batch/--opt-batch`` recorded for this file, else
    ``max_batch``/``opt_batch``: the app looks up the engine the user built."""
    def build(precision: str) -> Path:
        from export.tensorrt import batch_choice, ensure_engine

        chosen = batch_choice(cache_dir, onnx_path) or (max_batch, opt_batch)
        return ensure_engine(onnx_path, cache_dir, precision=precision, max_batch=chosen[0],
                             opt_batch=chosen[1])

    return build


def _reason_text(exc: EngineUnavailable) -> str:
    return exc.reason + (f" ({exc.hint})" if exc.hint else "")


def backend_status() -> dict[str, str | None]:
    """Each backend → None when usable here, else the reason and how to install it."""
    from engines.onnxruntime import CUDA_HINT, cuda_unavailable_reason

    status: dict[str, str | None] = {"tensorrt": _tensorrt_reason()}
    cuda = cuda_unavailable_reason()
    status["onnxruntime-cuda"] = None if cuda is None else f"{cuda} ({CUDA_HINT})"
    try:
        import onnxruntime  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: a DLL that would not load
        status["onnxruntime-cpu"] = say("onnxruntime-not-installed",
                                        detail=f"{exc}; pip install onnxruntime")
    else:
        status["onnxruntime-cpu"] = None
    from engines import ort_providers

    for device, provider in ort_providers.PROVIDERS.items():
        reason = ort_providers.unavailable_reason(device)
        status[provider.backend] = None if reason is None else f"{reason} ({provider.hint})"
    from engines.openvino import OPENVINO_HINT, unavailable_reason

    openvino = unavailable_reason()
    status["openvino"] = None if openvino is None else f"{openvino} ({OPENVINO_HINT})"
    return {name: status[name] for name in BACKENDS}


def _open_one(backend: str, onnx_path: Path, *, cache_dir: Path | None, precision: str,
              threads: int | None) -> Engine:
    if backend == "tensorrt":
        module = _tensorrt_module()
        folder = cache_dir if cache_dir is not None else onnx_path.parent.parent / "engines"
        engine: Engine = module.open_tensorrt_engine(
            onnx_path, build=tensorrt_builder(onnx_path, folder,
                                              module.max_batch_for(onnx_path),
                                              module.OPT_BATCH), precision=precision)
        return engine
    if backend == "openvino":
        from engines.openvino import OpenVinoEngine

        return OpenVinoEngine(onnx_path, cache_dir=cache_dir, threads=threads)
    from engines.onnxruntime import OnnxRuntimeEngine

    if backend == "onnxruntime-cuda":
        return OnnxRuntimeEngine(onnx_path, device="cuda", threads=threads)
    if backend in ("onnxruntime-directml", "onnxruntime-coreml"):
        return _open_gpu_provider(backend, onnx_path, cache_dir=cache_dir,
                                  precision=precision, threads=threads)
    return OnnxRuntimeEngine(onnx_path, device="cpu", threads=threads)


def _open_gpu_provider(backend: str, onnx_path: Path, *, cache_dir: Path | None,
                       precision: str, threads: int | None) -> Engine:
    """DirectML or CoreML: checked before any FP16 copy is written; DirectML at FP16 runs
    the mixed FP16 copy of the model."""
    from engines import ort_providers
    from engines.onnxruntime import OnnxRuntimeEngine

    device = "directml" if backend == "onnxruntime-directml" else "coreml"
    provider = ort_providers.PROVIDERS[device]
    reason = ort_providers.unavailable_reason(device)
    if reason is not None:
        raise EngineUnavailable(backend, reason, provider.hint)
    path = onnx_path
    if precision == "fp16" and provider.fp16_graph:
        from google.protobuf.message import DecodeError

        folder = cache_dir if cache_dir is not None else onnx_path.parent / "engines"
        try:
            path = ort_providers.fp16_onnx(onnx_path, folder)
        except (ValueError, OSError, DecodeError) as exc:  # an EngineError: next backend
            raise EngineError(f"{onnx_path.name}: the FP16 copy for {backend} could not be "
                              f"written ({type(exc).__name__}: {exc})") from exc
    return OnnxRuntimeEngine(path, device=device, threads=threads,  # type: ignore[arg-type]
                             precision=precision)


def open_engine(onnx_path: Path, preference: str = "auto", *, cache_dir: Path | None = None,
                precision: str = "fp16", threads: int | None = None) -> Engine:
    """Open ``onnx_path`` on the first usable backend (``auto``) or on the one named."""
    onnx_path = Path(onnx_path)
    if preference == "torch":
        raise ValueError("engine 'torch' runs a torch module (engines.torch.TorchEngine), not "
                         f"an ONNX file such as {onnx_path.name}; choose one of "
                         f"{', '.join(PREFERENCES)}")
    if preference not in PREFERENCES:
        raise ValueError(f"engine: expected one of {', '.join(PREFERENCES)}, "
                         f"got {preference!r}")
    if not onnx_path.is_file():
        raise ModelFileError(f"{onnx_path}: no such model file")
    order = BACKENDS if preference == "auto" else (preference,)
    reasons: dict[str, str] = {}
    for backend in order:
        try:
            engine = _open_one(backend, onnx_path, cache_dir=cache_dir, precision=precision,
                               threads=threads)
        except ModelFileError:
            raise
        except EngineUnavailable as exc:
            reasons[backend] = _reason_text(exc)
        except EngineError as exc:
            reasons[backend] = f"failed: {exc}"
            log.warning("%s could not open %s: %s", backend, onnx_path.name, exc)
        except OSError as exc:  # its runtime's library would not load: unusable here
            reasons[backend] = say("runtime-library-failed", error=exc)
            log.warning("%s is unusable: %s", backend, exc)
        else:
            if reasons:
                log.info("%s runs on %s (skipped: %s)", onnx_path.name, backend,
                         "; ".join(f"{k}: {v}" for k, v in reasons.items()))
            else:
                log.info("%s runs on %s", onnx_path.name, backend)
            return engine
    raise NoEngineAvailable(onnx_path.name, reasons)
