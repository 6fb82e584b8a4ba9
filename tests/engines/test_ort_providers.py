"""DirectML and CoreML through ONNX Runtime, with its provider list faked at the lowest level.

Neither provider exists on Linux. ``onnxruntime.get_available_providers`` is replaced by
one that lists the provider, and ``onnxruntime.InferenceSession`` by a session that keeps
what it was asked for (providers with their options, session options) and behaves as ONNX
Runtime does: providers it does not offer are dropped from ``get_providers()``, and the
model itself runs on the real CPU session underneath.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest

from engines import doctor, ort_providers, registry
from engines.base import EngineUnavailable
from engines.derived import read_stamp
from engines.onnxruntime import OnnxRuntimeEngine
from tests.engines import tiny_onnx_bytes

REAL_SESSION = onnxruntime.InferenceSession


class FakeOrt:
    """The provider list and the sessions made while it is installed."""

    def __init__(self, available: list[str], *, drops: tuple[str, ...] = ()) -> None:
        self.available = available
        self.drops = drops  # providers that fail to initialise (ORT falls back silently)
        self.sessions: list[FakeSession] = []


class FakeSession:
    def __init__(self, fake: FakeOrt, path: str, options: Any, providers: list[Any]) -> None:
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"provider names must be str, got {name!r}")
        self.path = path
        self.options = options
        self.requested = providers
        self._providers = [n for n in names if n in fake.available and n not in fake.drops]
        self._real = REAL_SESSION(path, options, providers=["CPUExecutionProvider"])
        fake.sessions.append(self)

    def get_providers(self) -> list[str]:
        return list(self._providers)

    def __getattr__(self, name: str) -> Any:  # run, get_inputs, get_outputs, …
        return getattr(self._real, name)


def install(monkeypatch: pytest.MonkeyPatch, system: str, available: list[str],
            drops: tuple[str, ...] = ()) -> FakeOrt:
    fake = FakeOrt(available, drops=drops)
    monkeypatch.setattr(ort_providers, "system", lambda: system)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(fake.available))

    def session(path: str, options: Any = None, providers: Any = None, **_: Any) -> FakeSession:
        return FakeSession(fake, path, options, list(providers or []))

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    monkeypatch.setitem(sys.modules, "engines.tensorrt", None)
    return fake


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "m" / "tiny.onnx"
    path.parent.mkdir()
    path.write_bytes(tiny_onnx_bytes(2.0))
    return path


def test_on_linux_each_is_named_with_why_and_the_fix() -> None:
    status = registry.backend_status()
    directml, coreml = status["onnxruntime-directml"], status["onnxruntime-coreml"]
    assert directml is not None and "DmlExecutionProvider runs on Windows only" in directml
    assert "pip install onnxruntime-directml" in directml
    assert coreml is not None and "CoreMLExecutionProvider runs on macOS only" in coreml
    rows = dict(next(rows for title, rows in doctor.collect(Path("/nonexistent")).items()
                     if title.startswith("Engines")))
    assert rows["onnxruntime-directml"].startswith("unusable: DmlExecutionProvider runs on")
    assert "onnxruntime-directml" in rows["onnxruntime-directml"].split("(", 1)[1]
    assert rows["onnxruntime-coreml"].startswith("unusable: CoreMLExecutionProvider")
    local = doctor._local_backend_status()
    assert local["onnxruntime-directml"] == directml


def test_directml_on_windows_runs_the_fp16_copy_with_its_session_options(
    tiny: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake = install(monkeypatch, "Windows", ["DmlExecutionProvider", "CPUExecutionProvider"])
    cache = tiny.parent.parent / "engines"
    engine = registry.open_engine(tiny, "auto", cache_dir=cache)
    assert engine.backend == "onnxruntime-directml"
    (session,) = fake.sessions
    assert session.requested == [("DmlExecutionProvider", {"device_id": "0"}),
                                 "CPUExecutionProvider"]
    assert session.options.enable_mem_pattern is False
    assert session.options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    fp16 = Path(session.path)
    assert fp16.parent == cache and fp16.name.endswith(".fp16.onnx")
    record = read_stamp(fp16)
    assert record is not None and record["source"] == "tiny.onnx"
    graph = onnx.load(str(fp16))
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.graph.initializer)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    assert engine.inputs[0].dtype == "float32"  # I/O stay FP32
    np.testing.assert_allclose(engine.run({"x": x, "y": x})["out"], 3 * x, rtol=1e-3)
    # FP32 asked: the original graph
    registry.open_engine(tiny, "onnxruntime-directml", cache_dir=cache, precision="fp32")
    assert fake.sessions[-1].path == str(tiny)


def test_coreml_on_macos_asks_for_fp16_through_its_options(
    tiny: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake = install(monkeypatch, "Darwin", ["CoreMLExecutionProvider", "CPUExecutionProvider"])
    engine = registry.open_engine(tiny, "auto", cache_dir=tiny.parent / "engines")
    assert engine.backend == "onnxruntime-coreml"
    name, options = fake.sessions[-1].requested[0]
    assert name == "CoreMLExecutionProvider" and fake.sessions[-1].path == str(tiny)
    assert options == {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL",
                       "AllowLowPrecisionAccumulationOnGPU": "1"}
    OnnxRuntimeEngine(tiny, device="coreml", precision="fp32")
    assert "AllowLowPrecisionAccumulationOnGPU" not in fake.sessions[-1].requested[0][1]


def test_a_build_without_the_provider_says_so_and_auto_uses_the_cpu(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    install(monkeypatch, "Windows", ["CPUExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="engines.registry"):
        engine = registry.open_engine(tiny, "auto", cache_dir=tiny.parent / "engines")
    assert engine.backend == "onnxruntime-cpu"
    assert "onnxruntime-directml: this onnxruntime build has no DmlExecutionProvider" \
        in caplog.text
    assert not (tiny.parent / "engines").exists()  # no FP16 copy for a provider never used
    status = registry.backend_status()["onnxruntime-directml"]
    assert status is not None and "pip install onnxruntime-directml" in status


def test_a_provider_that_fails_to_initialise_is_refused_not_silently_cpu(
    tiny: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    install(monkeypatch, "Windows", ["DmlExecutionProvider", "CPUExecutionProvider"],
            drops=("DmlExecutionProvider",))
    with pytest.raises(EngineUnavailable, match="DmlExecutionProvider could not be initialised"):
        OnnxRuntimeEngine(tiny, device="directml")
    engine = registry.open_engine(tiny, "auto", cache_dir=tiny.parent / "engines")
    assert engine.backend == "onnxruntime-cpu"
