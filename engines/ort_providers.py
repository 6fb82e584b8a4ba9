"""ONNX Runtime's GPU providers beyond CUDA: DirectML (Windows) and CoreML (macOS).

Each is one row of ``PROVIDERS``: the ONNX Runtime provider name, the system it runs on,
its provider options, how it takes FP16 and how to install it. Neither can run on the
project's Linux machines; their tests fake ONNX Runtime's provider list
(``onnxruntime.get_available_providers``) and ``InferenceSession`` at the lowest level.

FP16: DirectML runs an FP16 graph natively, so the registry opens the mixed FP16 copy
of the model (``export.fp16``: instance norm and the other sensitive ops kept FP32), a
stamped derived file beside the engine cache. CoreML takes FP16 through its own option:
the ML Program format computes in FP16 on the GPU and Neural Engine
(``AllowLowPrecisionAccumulationOnGPU``), from the FP32 graph.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.doctor_messages import say

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    backend: str  # the registry's name
    name: str  # ONNX Runtime's provider name
    system: str  # platform.system() where it exists
    system_label: str
    options: dict[str, str] = field(default_factory=dict)
    fp16_graph: bool = False  # open the mixed FP16 ONNX copy for precision "fp16"
    fp16_options: dict[str, str] = field(default_factory=dict)
    hint: str = ""


PROVIDERS: dict[str, Provider] = {
    "directml": Provider(
        "onnxruntime-directml", "DmlExecutionProvider", "Windows", "Windows",
        options={"device_id": "0"}, fp16_graph=True,
        hint="pip uninstall onnxruntime && pip install onnxruntime-directml (Windows 10+, "
             "a DirectX 12 GPU: AMD, Intel or NVIDIA)"),
    "coreml": Provider(
        "onnxruntime-coreml", "CoreMLExecutionProvider", "Darwin", "macOS",
        options={"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"},
        fp16_options={"AllowLowPrecisionAccumulationOnGPU": "1"},
        hint="pip install onnxruntime (the macOS wheels carry CoreMLExecutionProvider; "
             "macOS 13+ for the ML Program format)"),
}


def system() -> str:
    """``platform.system()`` (one place for tests to fake the OS)."""
    return platform.system()


def unavailable_reason(device: str) -> str | None:
    """None when ``device``'s provider can be tried here, else why not (without the hint)."""
    provider = PROVIDERS[device]
    here = system()
    if here != provider.system:
        return say("provider-other-system", provider=provider.name,
                   system=provider.system_label, here=here or "an unknown system")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return say("onnxruntime-not-installed", detail=exc)
    available = ort.get_available_providers()
    if provider.name not in available:
        return say("provider-missing", provider=provider.name, providers=", ".join(available))
    return None


def provider_entry(device: str, precision: str) -> tuple[str, dict[str, str]]:
    """The ``providers=`` entry ONNX Runtime takes for ``device`` at ``precision``."""
    provider = PROVIDERS[device]
    options = dict(provider.options)
    if precision == "fp16":
        options.update(provider.fp16_options)
    return provider.name, options


def configure_session(device: str, options: Any) -> None:
    """Session options a provider requires: DirectML needs sequential execution and no
    memory-pattern optimisation (ONNX Runtime's DirectML documentation)."""
    if device == "directml":
        import onnxruntime as ort

        options.enable_mem_pattern = False
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL


def fp16_onnx(onnx_path: Path, cache_dir: Path) -> Path:
    """The mixed FP16 copy of ``onnx_path`` (a stamped derived file in ``cache_dir``),
    converted on first use and whenever the source or the copy changed."""
    from engines.derived import stamp_problem, write_stamp
    from engines.fileio import sha256_file
    from export.fp16 import convert_file

    source_sha = sha256_file(onnx_path)
    target = Path(cache_dir) / f"{onnx_path.stem}-{source_sha[:12]}.fp16.onnx"
    problem = stamp_problem(target, source_sha)
    if problem is None:
        return target
    log.info("writing the FP16 copy of %s: %s", onnx_path.name, problem)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    convert_file(str(onnx_path), str(partial))
    partial.replace(target)
    write_stamp(target, source_sha, source=onnx_path.name, precision="fp16-mixed")
    return target
