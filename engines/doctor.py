"""``swapcam doctor``: what this machine can run, and for what it cannot, why and how to fix it.

Reports the OS, Python, CPU, GPU and driver (cuda-python when installed, else nvidia-smi),
torch's CUDA/cuDNN, TensorRT, ONNX Runtime and its providers, each engine backend's status and
the installed models. Every probe is guarded: a missing piece is a line in the report, never a
crash, and the command exits 0 on a CPU-only machine.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engines.doctor_messages import say
from engines.ort_providers import PROVIDERS

HINTS = {
    "tensorrt": "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12",
    "onnxruntime-cuda": "pip uninstall onnxruntime && pip install onnxruntime-gpu",
    "onnxruntime-cpu": "pip install onnxruntime",
    "cuda-python": "pip install cuda-python",
    "openvino": "pip install openvino",
    **{p.backend: p.hint for p in PROVIDERS.values()},  # DirectML, CoreML
}
BACKENDS = ("tensorrt", "onnxruntime-cuda", "onnxruntime-directml", "onnxruntime-coreml",
            "onnxruntime-cpu", "openvino")

Row = tuple[str, str]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _safe(probe: Callable[[], str]) -> str:
    try:
        return probe()
    except Exception as exc:  # a probe must never take the report down
        return say("probe-failed", kind=type(exc).__name__, error=exc)


def _cpu() -> str:
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    import os

    return f"{name}, {os.cpu_count()} logical cores"


def _gpu_cuda_python() -> str | None:
    """GPU names and driver version through the CUDA driver API (cuda-python's
    ``cuInit``, ``cuDriverGetVersion``, ``cuDeviceGetCount``, ``cuDeviceGetName``)."""
    if importlib.util.find_spec("cuda") is None:
        return None
    try:
        from cuda.bindings import driver  # cuda-python ≥ 12.6
    except ImportError:
        try:
            from cuda import cuda as driver  # type: ignore[no-redef]  # older layout
        except ImportError:
            return None
    (err,) = driver.cuInit(0)
    if int(err) != 0:
        return say("gpu-cuinit-failed", error=err)
    err, version = driver.cuDriverGetVersion()
    err, count = driver.cuDeviceGetCount()
    names = []
    for index in range(int(count)):
        _, device = driver.cuDeviceGet(index)
        _, raw = driver.cuDeviceGetName(128, device)
        names.append(raw.split(b"\0", 1)[0].decode(errors="replace"))
    driver_text = f"CUDA driver API {int(version) // 1000}.{int(version) % 1000 // 10}"
    return f"{', '.join(names) or 'none'} ({driver_text}, via cuda-python)"


def _gpu_nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    result = subprocess.run(
        [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        return say("gpu-nvidia-smi-failed", error=result.stderr.strip() or result.returncode)
    gpus = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return "; ".join(f"{g} (via nvidia-smi)" for g in gpus) or say("gpu-nvidia-smi-empty")


def _gpu() -> str:
    found = _gpu_cuda_python() or _gpu_nvidia_smi()
    if found is not None:
        return found
    return say("gpu-none-found", hint=HINTS["cuda-python"])


def _torch() -> str:
    import torch

    cuda = torch.version.cuda
    if cuda is None:
        return say("torch-cpu-only", version=torch.__version__)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    visible = torch.cuda.is_available()
    devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return say("torch-cuda", version=torch.__version__, cuda=cuda, cudnn=cudnn or "absent",
               gpu="visible: " + devices if visible else "not visible")


def _tensorrt() -> str:
    from engines.base import EngineUnavailable
    from engines.tensorrt import construct, load_tensorrt

    try:
        tensorrt = load_tensorrt()
    except EngineUnavailable as exc:
        return f"{exc.reason} ({exc.hint})"
    import torch

    if torch.cuda.is_available():
        # Installed is not usable: TensorRT may fail to initialise CUDA on this GPU/driver
        try:
            construct(tensorrt, "Runtime", tensorrt.Logger(tensorrt.Logger.WARNING))
        except EngineUnavailable as exc:
            return f"{exc.reason} ({exc.hint})"
        return f"TensorRT {tensorrt.__version__}, initialises on this GPU"
    return f"TensorRT {tensorrt.__version__}"


def _onnxruntime() -> str:
    if importlib.util.find_spec("onnxruntime") is None:
        return say("onnxruntime-line-missing", hint=HINTS["onnxruntime-cpu"])
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__}, providers: {', '.join(ort.get_available_providers())}"


def backend_status() -> dict[str, str | None]:
    """The registry's answer when it is there, else the same checks made here."""
    try:
        from engines.registry import backend_status as registry_status
    except ImportError:
        return _local_backend_status()
    return registry_status()


def _local_backend_status() -> dict[str, str | None]:
    from engines.tensorrt import unavailable_reason

    status: dict[str, str | None] = {"tensorrt": unavailable_reason()}
    if importlib.util.find_spec("onnxruntime") is None:
        status["onnxruntime-cuda"] = say("onnxruntime-not-installed",
                                         detail=HINTS["onnxruntime-cuda"])
        status["onnxruntime-cpu"] = say("onnxruntime-not-installed",
                                        detail=HINTS["onnxruntime-cpu"])
        return status | _openvino_status()
    import onnxruntime as ort

    providers = ort.get_available_providers()
    status["onnxruntime-cuda"] = (
        None if "CUDAExecutionProvider" in providers else
        say("onnxruntime-no-cuda-here", hint=HINTS["onnxruntime-cuda"]))
    status["onnxruntime-cpu"] = None
    return status | _openvino_status()


def _openvino_status() -> dict[str, str | None]:
    """OpenVINO, DirectML and CoreML: each None when usable, else why not and the fix."""
    from engines import ort_providers
    from engines.openvino import unavailable_reason

    status: dict[str, str | None] = {}
    for device, provider in ort_providers.PROVIDERS.items():
        why = ort_providers.unavailable_reason(device)
        status[provider.backend] = None if why is None else f"{why} ({provider.hint})"
    reason = unavailable_reason()
    status["openvino"] = None if reason is None else f"{reason} ({HINTS['openvino']})"
    return status


def _with_hint(backend: str, reason: str) -> str:
    """Make sure every 'unusable' line says how to install, whoever wrote the reason."""
    hint = HINTS.get(backend)
    return reason if hint is None or hint in reason else f"{reason} (fix: {hint})"


def _models(models_dir: Path) -> list[Row]:
    from engines.models import MODELS, model_status

    def status(name: str) -> str:
        return _safe(lambda: say(f"model-{model_status(models_dir, name)}"))

    return [(name, status(name)) for name in MODELS]


def collect(models_dir: Path) -> dict[str, list[Row]]:
    """The whole report as sections of (label, value) rows."""
    system: list[Row] = [
        ("OS", _safe(lambda: f"{platform.system()} {platform.release()} ({platform.platform()})")),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("CPU", _safe(_cpu)),
        ("GPU / driver", _safe(_gpu)),
        ("torch", _safe(_torch)),
        ("TensorRT", _safe(_tensorrt)),
        ("ONNX Runtime", _safe(_onnxruntime)),
    ]
    try:
        status = backend_status()
    except Exception as exc:  # the registry itself failing is worth reporting, not crashing
        status = {name: say("status-check-failed", kind=type(exc).__name__, error=exc)
                  for name in BACKENDS}
    engines: list[Row] = []
    for name in sorted(status, key=lambda n: BACKENDS.index(n) if n in BACKENDS else 99):
        reason = status[name]
        engines.append((name, "usable" if reason is None else
                        say("engine-unusable", reason=_with_hint(name, reason))))
    try:
        models = _models(models_dir)
    except Exception as exc:
        models = [("models", say("probe-failed", kind=type(exc).__name__, error=exc))]
    report = {"System": system,
              f"Engines (first usable wins: {' > '.join(BACKENDS)})": engines,
              f"Models in {models_dir}": models}
    memory = _memory(models_dir)
    if memory:
        report["Device memory per engine (estimated, TensorRT FP16)"] = memory
    failures = _compile_failures(models_dir)
    if failures:
        report[say("compile-failures")] = failures
    return report


def _memory(models_dir: Path) -> list[Row]:
    """Each installed ONNX model's estimated engine memory at its batch profile's max."""
    from engines.models import MODELS, model_path

    rows: list[Row] = []
    for name in MODELS:
        path = model_path(models_dir, name)
        if path.suffix == ".onnx" and path.is_file():
            rows.append((name, _safe(functools.partial(_describe, path))))
    return rows


def _describe(path: Path) -> str:
    from engines.memory import estimate
    from engines.tensorrt import max_batch_for

    return estimate(path, max_batch_for(path)).describe()


def _compile_failures(models_dir: Path) -> list[Row]:
    """The newest compile failure per model file, as the runtimes recorded them."""
    try:
        from engines.openvino import read_failures

        found = read_failures(models_dir / "engines")
    except Exception as exc:
        return [("openvino", say("probe-failed", kind=type(exc).__name__, error=exc))]
    return [(f"openvino: {name}", reason) for name, reason in sorted(found.items())]


def format_report(sections: dict[str, list[Row]]) -> str:
    lines = []
    for title, rows in sections.items():
        lines.append(title)
        width = max((len(label) for label, _ in rows), default=0)
        lines.extend(f"  {label:<{width}}  {value}" for label, value in rows)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    sections = collect(Path(args.models_dir))
    if getattr(args, "json", False):
        import json

        print(json.dumps({title: dict(rows) for title, rows in sections.items()}, indent=2))
    else:
        print(format_report(sections), end="")
    return 0
