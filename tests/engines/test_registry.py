"""engines.registry: ordered preference, reasons for every skipped backend."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engines.onnxruntime as ort_engine
from engines import registry
from engines.base import EngineUnavailable, ModelFileError, NoEngineAvailable, TensorSpec
from tests.engines import tiny_onnx_bytes


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "m" / "tiny.onnx"
    path.parent.mkdir()
    path.write_bytes(tiny_onnx_bytes(2.0))
    return path


@pytest.fixture()
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import engines.tensorrt`` fail like a missing module.
    monkeypatch.setitem(sys.modules, "engines.tensorrt", None)


@pytest.fixture()
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_engine, "cuda_unavailable_reason",
                        lambda: "this onnxruntime build has no CUDAExecutionProvider")


def _fake_tensorrt(monkeypatch: pytest.MonkeyPatch, opener: Any) -> None:
    module = types.ModuleType("engines.tensorrt")
    module.open_tensorrt_engine = opener  # type: ignore[attr-defined]
    module.MAX_BATCH, module.OPT_BATCH = 8, 1  # type: ignore[attr-defined]
    module.max_batch_for = lambda path: 8  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "engines.tensorrt", module)


@pytest.mark.usefixtures("no_tensorrt", "no_cuda")
def test_auto_picks_ort_cpu_and_logs_each_skipped_reason(
        tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="engines.registry"):
        engine = registry.open_engine(tiny, "auto", threads=1)
    assert engine.backend == "onnxruntime-cpu"
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(engine.run({"x": x, "y": x})["out"], 3 * x)
    text = caplog.text
    assert "tensorrt: TensorRT support not installed" in text
    assert "pypi.nvidia.com" in text
    assert "onnxruntime-cuda: this onnxruntime build has no CUDAExecutionProvider" in text


@pytest.mark.usefixtures("no_tensorrt", "no_cuda")
def test_backend_status_reports_reasons_and_usable() -> None:
    status = registry.backend_status()
    assert list(status) == list(registry.BACKENDS)
    assert status["onnxruntime-cpu"] is None
    assert status["tensorrt"] is not None and "not installed" in status["tensorrt"]
    assert status["onnxruntime-cuda"] is not None
    assert "onnxruntime-gpu" in status["onnxruntime-cuda"]


@pytest.mark.usefixtures("no_tensorrt")
def test_no_engine_available_lists_every_backend(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(NoEngineAvailable) as info:
        registry.open_engine(tiny)
    assert list(info.value.reasons) == list(registry.BACKENDS)
    message = str(info.value)
    assert "tiny.onnx" in message
    for backend in registry.BACKENDS:
        assert f"  - {backend}: " in message
    assert "onnxruntime is not installed" in info.value.reasons["onnxruntime-cpu"]


@pytest.mark.usefixtures("no_cuda")
def test_a_named_backend_is_the_only_one_tried(tiny: Path) -> None:
    with pytest.raises(NoEngineAvailable) as info:
        registry.open_engine(tiny, "onnxruntime-cuda")
    assert list(info.value.reasons) == ["onnxruntime-cuda"]
    assert registry.open_engine(tiny, "onnxruntime-cpu").backend == "onnxruntime-cpu"


def test_tensorrt_slot_calls_the_gpu_module(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, Path, str]] = []

    class FakeTrt:
        backend = "tensorrt"
        inputs = (TensorSpec("x", (1, 3), "float32"),)
        outputs = (TensorSpec("out", (1, 3), "float32"),)

        def run(self, feeds: Any) -> dict[str, np.ndarray]:
            return {"out": feeds["x"]}

        def close(self) -> None:
            pass

    from export import tensorrt as trt_export  # the builder the registry hands over

    def ensure_engine(onnx_path: Path, cache_dir: Path, *, precision: str, max_batch: int,
                      opt_batch: int) -> Path:
        assert (max_batch, opt_batch) == (8, 1)  # several faces per launch
        calls.append((onnx_path, cache_dir, precision))
        return cache_dir / "built.engine"

    def opener(onnx_path: Path, *, build: Any, precision: str) -> FakeTrt:
        assert build(precision) == calls[-1][1] / "built.engine"
        return FakeTrt()

    monkeypatch.setattr(trt_export, "ensure_engine", ensure_engine)
    _fake_tensorrt(monkeypatch, opener)
    engine = registry.open_engine(tiny, precision="fp32")
    assert engine.backend == "tensorrt"
    # Default cache: <models_dir>/engines for <models_dir>/<name>/<file>.onnx
    assert calls == [(tiny, tiny.parent.parent / "engines", "fp32")]
    registry.open_engine(tiny, cache_dir=tiny.parent / "c")
    assert calls[-1][1] == tiny.parent / "c"


@pytest.mark.usefixtures("no_cuda")
def test_tensorrt_unavailable_falls_back_with_its_reason(
        tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def opener(onnx_path: Path, *, build: Any, precision: str) -> None:
        raise EngineUnavailable("tensorrt", "no CUDA device", "install a driver")

    _fake_tensorrt(monkeypatch, opener)
    with caplog.at_level(logging.INFO, logger="engines.registry"):
        assert registry.open_engine(tiny).backend == "onnxruntime-cpu"
    assert "tensorrt: no CUDA device (install a driver)" in caplog.text


@pytest.mark.usefixtures("no_tensorrt", "no_cuda")
def test_corrupt_model_is_raised_not_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(tiny_onnx_bytes()[:40])
    with pytest.raises(ModelFileError, match=r"bad\.onnx"):
        registry.open_engine(bad)
    with pytest.raises(ModelFileError, match="no such model file"):
        registry.open_engine(tmp_path / "missing.onnx")


def test_unknown_preference(tiny: Path) -> None:
    with pytest.raises(ValueError, match="expected one of auto, tensorrt"):
        registry.open_engine(tiny, "directml")
    with pytest.raises(ValueError, match="TorchEngine"):
        registry.open_engine(tiny, "torch")


@pytest.mark.parametrize("error", [ValueError("an op convert_float_to_float16 cannot take"),
                                   OSError(28, "No space left on device")])
def test_a_failed_directml_fp16_copy_is_a_fallback_not_a_crash(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Issue 25: the FP16 conversion's ValueError (or a write's OSError) for DirectML is an
    EngineError, so the registry names it and moves on. Before: it ended the caller."""
    from engines import ort_providers

    def fails(onnx_path: Path, cache_dir: Path) -> Path:
        raise error

    monkeypatch.setattr(ort_providers, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(ort_providers, "fp16_onnx", fails)
    with pytest.raises(NoEngineAvailable) as caught:
        registry.open_engine(tiny, "onnxruntime-directml", cache_dir=tmp_path / "c")
    assert "FP16 copy for onnxruntime-directml could not be written" in str(caught.value)
