"""Every problem ``swapcam doctor`` can report, by id: one table, so that each has a
troubleshooting entry (docs/troubleshooting.md, ``(doctor-<id>)=``; a test keeps the two
in step). The runtimes' own availability checks (TensorRT, ONNX Runtime and its providers,
OpenVINO) write their reasons from here too: they are what ``doctor`` prints as "unusable".

Texts are ``str.format`` templates; ``say(id, **fields)`` fills one in.
"""

from __future__ import annotations

DOCTOR_MESSAGES: dict[str, str] = {
    # -- TensorRT (engines/tensorrt.py, engines/registry.py) --------------------------
    "tensorrt-not-installed": "TensorRT is not installed: no tensorrt package ({error})",
    "tensorrt-stubs-only": "TensorRT is not installed (only its type stubs, tensorrt-stubs, are)",
    "tensorrt-init-failed": ("TensorRT {version} is installed but could not initialise CUDA "
                             "(trt.{factory} failed: {error})"),
    "tensorrt-init-none": ("TensorRT {version} is installed but could not initialise CUDA "
                           "(trt.{factory} returned None)"),
    "tensorrt-no-gpu": ("no CUDA GPU is visible to torch ({build}; TensorRT needs an NVIDIA GPU "
                        "and a CUDA build of torch: pip install torch --index-url "
                        "https://download.pytorch.org/whl/cu126)"),
    "tensorrt-support-missing": "TensorRT support not installed ({hint})",
    "tensorrt-support-broken": "TensorRT support failed to import ({error})",
    "tensorrt-no-cuda": "no CUDA GPU is visible (torch.cuda.is_available() is False)",
    # a runtime's DLL would not load (Windows raises OSError, not ImportError)
    "tensorrt-library-failed": "TensorRT support failed to load a library ({error})",
    "torch-library-failed": "torch failed to load a library ({error})",
    "runtime-library-failed": "its runtime failed to load a library ({error})",
    # -- ONNX Runtime and its GPU providers (engines/onnxruntime.py, ort_providers.py) --
    "onnxruntime-not-installed": "onnxruntime is not installed ({detail})",
    "onnxruntime-no-cuda": ("this onnxruntime build has no CUDAExecutionProvider "
                            "(providers: {providers})"),
    "onnxruntime-no-cuda-here": "no CUDAExecutionProvider in this onnxruntime build ({hint})",
    "provider-other-system": "{provider} runs on {system} only (this is {here})",
    "provider-missing": "this onnxruntime build has no {provider} (providers: {providers})",
    # -- OpenVINO (engines/openvino.py) ------------------------------------------------
    "openvino-not-installed": "openvino is not installed ({error})",
    "openvino-cannot-start": "openvino cannot start ({kind}: {error})",
    "openvino-no-device": "openvino offers no {device} device (devices: {devices})",
    # -- doctor's own lines (engines/doctor.py) ------------------------------------------
    "probe-failed": "unknown ({kind}: {error})",
    "gpu-cuinit-failed": "none (cuda-python: cuInit failed with {error}; no NVIDIA driver or GPU)",
    "gpu-nvidia-smi-failed": "none (nvidia-smi failed: {error})",
    "gpu-nvidia-smi-empty": "none (nvidia-smi lists none)",
    "gpu-none-found": ("none found (no cuda-python, no nvidia-smi; for driver details: "
                       "{hint})"),
    "torch-cpu-only": "torch {version}, CPU-only build (no CUDA, no cuDNN)",
    "torch-cuda": "torch {version}, CUDA {cuda}, cuDNN {cudnn}, GPU {gpu}",
    "onnxruntime-line-missing": "not installed ({hint})",
    "engine-unusable": "unusable: {reason}",
    "status-check-failed": "status check failed ({kind}: {error})",
    "compile-failures": "Models a runtime could not compile (the next runtime was used)",
    # a model's status in "Models in <folder>" (engines.models.Status)
    "model-missing": "missing",
    "model-present": "present",
    "model-corrupt": "corrupt",
    "model-verified": "verified",
}


def say(key: str, **fields: object) -> str:
    """The message ``key`` with ``fields`` filled in (KeyError: not in the table)."""
    return DOCTOR_MESSAGES[key].format(**fields)
