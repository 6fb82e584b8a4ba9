"""OpenVINO engine: an ONNX file compiled for OpenVINO's CPU plugin (``pip install openvino``).

The compiled model (OpenVINO's exported blob) is a derived file like an ONNX export: it
lives in the engine cache folder with a stamp (``engines.derived``) keyed by the ONNX file's
sha256, the OpenVINO version, the device and the precision, and is rebuilt when any of them
changes or the blob was altered. Inference runs in FP32 (``INFERENCE_PRECISION_HINT``), so a
CPU with bf16 units does not quietly change the numbers.

A model OpenVINO cannot read or compile raises ``EngineError`` with OpenVINO's message; the
registry then falls back to the next runtime and logs why, and the reason is kept in
``openvino-failures.json`` in the cache folder for ``doctor`` (a later success clears it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import EngineError, EngineUnavailable, ModelFileError, TensorSpec, check_feeds
from engines.doctor_messages import say

log = logging.getLogger(__name__)

OPENVINO_HINT = "pip install openvino (or the [openvino] extra)"
DEVICE = "CPU"
PRECISION = "f32"
FAILURES_FILE = "openvino-failures.json"
_failures_lock = threading.Lock()


def unavailable_reason() -> str | None:
    """None when the openvino package imports and offers a CPU device, else why not."""
    try:
        import openvino as ov
    except ImportError as exc:
        return say("openvino-not-installed", error=exc)
    try:
        devices = ov.Core().available_devices
    except Exception as exc:  # the runtime's own error classes
        return say("openvino-cannot-start", kind=type(exc).__name__, error=exc)
    if DEVICE not in devices:
        return say("openvino-no-device", device=DEVICE, devices=", ".join(devices) or "none")
    return None


def _spec(port: Any) -> TensorSpec:
    shape = tuple(int(d.get_length()) if d.is_static else "?" for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype()).name)


def build_key(onnx_sha256: str, version: str, threads: int | None = None) -> str:
    """What the blob is built from: the ONNX file, the OpenVINO version, device, precision."""
    del threads  # threads are a run-time property; the blob does not depend on them
    text = f"{onnx_sha256}|openvino {version}|{DEVICE}|{PRECISION}"
    return hashlib.sha256(text.encode()).hexdigest()


def blob_path(cache_dir: Path, onnx_path: Path, onnx_sha256: str) -> Path:
    return Path(cache_dir) / f"{onnx_path.stem}-{onnx_sha256[:12]}.openvino-{DEVICE.lower()}.blob"


def read_failures(cache_dir: Path) -> dict[str, str]:
    """ONNX file name → why OpenVINO could not compile it (the newest try of each)."""
    try:
        data = json.loads((Path(cache_dir) / FAILURES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record_failure(cache_dir: Path, name: str, reason: str | None) -> None:
    from engines.fileio import write_atomic

    with _failures_lock:
        failures = read_failures(cache_dir)
        if reason is None and name not in failures:
            return
        if reason is None:
            failures.pop(name, None)
        else:
            failures[name] = reason
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(cache_dir) / FAILURES_FILE,
                     json.dumps(failures, indent=2, sort_keys=True).encode())


def _config(threads: int | None) -> dict[str, Any]:
    import openvino.properties as props
    import openvino.properties.hint as hints

    config: dict[str, Any] = {hints.inference_precision(): PRECISION}
    if threads is not None:
        config[props.inference_num_threads()] = int(threads)
    return config


def _compile(core: Any, onnx_path: Path, cache_dir: Path | None, threads: int | None) -> Any:
    """The compiled model: from the stamped blob when it is current, else compiled from
    the ONNX file (and the blob written and stamped)."""
    import openvino as ov

    from engines.derived import remove_derived, stamp_problem, write_stamp
    from engines.fileio import sha256_file, write_atomic

    config = _config(threads)
    if cache_dir is None:
        return core.compile_model(core.read_model(str(onnx_path)), DEVICE, config)
    onnx_sha = sha256_file(onnx_path)
    key = build_key(onnx_sha, ov.__version__)
    blob = blob_path(cache_dir, onnx_path, onnx_sha)
    problem = stamp_problem(blob, key)
    if problem is None:
        try:
            return core.import_model(blob.read_bytes(), DEVICE, config)
        except Exception as exc:  # a blob of another build that the stamp did not catch
            problem = f"OpenVINO could not import it ({type(exc).__name__}: {exc})"
    log.info("compiling %s for OpenVINO %s: %s", onnx_path.name, DEVICE, problem)
    compiled = core.compile_model(core.read_model(str(onnx_path)), DEVICE, config)
    remove_derived(blob)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    exported = compiled.export_model()  # bytes, or a BytesIO in newer releases
    write_atomic(blob, exported.getvalue() if hasattr(exported, "getvalue") else exported)
    write_stamp(blob, key, onnx=onnx_path.name, openvino=ov.__version__, device=DEVICE,
                precision=PRECISION)
    return compiled


class OpenVinoEngine:
    """Runs one ONNX file on OpenVINO's CPU plugin; ``backend`` is ``openvino``."""

    backend = "openvino"

    def __init__(self, path: Path, *, cache_dir: Path | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        if threads is not None and threads < 1:
            raise ValueError(f"threads: expected >= 1 or None, got {threads}")
        try:
            import openvino as ov
        except ImportError as exc:
            raise EngineUnavailable(self.backend, f"openvino is not installed ({exc})",
                                    OPENVINO_HINT) from exc
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such model file")
        self.threads = threads
        try:
            self._compiled: Any = _compile(ov.Core(), self.path, cache_dir, threads)
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            reason = f"OpenVINO could not compile {self.path.name} ({type(exc).__name__}: {exc})"
            if cache_dir is not None:
                _record_failure(cache_dir, self.path.name, reason)
            raise EngineError(reason) from exc
        if cache_dir is not None:
            _record_failure(cache_dir, self.path.name, None)
        self._request: Any = self._compiled.create_infer_request()
        self._lock = threading.Lock()
        self.inputs = tuple(_spec(p) for p in self._compiled.inputs)
        self.outputs = tuple(_spec(p) for p in self._compiled.outputs)
        log.debug("%s: openvino %s", self.path.name, DEVICE)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._compiled is None:
            raise EngineError(f"{self.path}: engine is closed")
        check_feeds(self.inputs, feeds)
        for spec in self.inputs:
            got = np.asarray(feeds[spec.name]).dtype
            if got.name != spec.dtype:
                raise EngineError(f"{spec.name}: expected dtype {spec.dtype}, got {got.name}")
        with self._lock:  # one infer request: its output buffers are reused by each call
            try:
                self._request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
            except Exception as exc:
                raise EngineError(f"{self.path.name}: inference failed ({exc})") from exc
            return {spec.name: np.array(self._request.get_tensor(spec.name).data, copy=True)
                    for spec in self.outputs}

    def close(self) -> None:
        self._request = None
        self._compiled = None

    def __enter__(self) -> OpenVinoEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenVinoEngine({self.path.name!r})"
