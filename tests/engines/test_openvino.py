"""engines.openvino: real OpenVINO on small real ONNX files; the stamped blob; failures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engines import registry
from engines.base import EngineError, ModelFileError, NoEngineAvailable
from engines.derived import read_stamp, stamp_path
from tests.engines import tiny_onnx_bytes

openvino = pytest.importorskip("openvino")

from engines.openvino import (  # noqa: E402 (after the importorskip)
    FAILURES_FILE,
    OpenVinoEngine,
    read_failures,
    unavailable_reason,
)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "m" / "tiny.onnx"
    path.parent.mkdir()
    path.write_bytes(tiny_onnx_bytes(2.0, dynamic_batch=True))
    return path


def test_runs_the_model_with_its_specs_and_checks_feeds(tiny: Path) -> None:
    assert unavailable_reason() is None
    with OpenVinoEngine(tiny, threads=1) as engine:
        assert engine.backend == "openvino"
        assert [s.name for s in engine.inputs] == ["x", "y"]
        assert engine.inputs[0].shape == ("?", 3) and engine.inputs[0].dtype == "float32"
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        out = engine.run({"x": x, "y": np.ones_like(x)})["out"]
        np.testing.assert_allclose(out, 2 * x + 1)
        again = engine.run({"x": x, "y": np.zeros_like(x)})["out"]
        np.testing.assert_allclose(out, 2 * x + 1)  # the first result was a copy
        np.testing.assert_allclose(again, 2 * x)
        with pytest.raises(EngineError, match="expected dtype float32"):
            engine.run({"x": x.astype(np.float64), "y": x})
        with pytest.raises(EngineError, match=r"expected \['x', 'y'\]"):
            engine.run({"x": x})
    with pytest.raises(EngineError, match="closed"):
        engine.run({"x": x, "y": x})


def test_the_compiled_blob_is_a_stamped_derived_file(
    tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    cache = tmp_path / "engines"
    with caplog.at_level(logging.INFO, logger="engines.openvino"):
        OpenVinoEngine(tiny, cache_dir=cache).close()
    blobs = list(cache.glob("tiny-*.openvino-cpu.blob"))
    assert len(blobs) == 1 and "compiling tiny.onnx" in caplog.text
    record = read_stamp(blobs[0])
    assert record is not None and record["onnx"] == "tiny.onnx"
    assert record["openvino"] == openvino.__version__ and record["precision"] == "f32"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="engines.openvino"):
        engine = OpenVinoEngine(tiny, cache_dir=cache)  # from the blob: no compile
    assert "compiling" not in caplog.text
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(engine.run({"x": x, "y": x})["out"], 3 * x)
    # an altered blob is rebuilt, with the reason in the log
    blobs[0].write_bytes(blobs[0].read_bytes()[:-8] + b"tampered")
    with caplog.at_level(logging.INFO, logger="engines.openvino"):
        OpenVinoEngine(tiny, cache_dir=cache).close()
    assert "changed since it was built" in caplog.text
    # another ONNX file under the same name: another key, another blob
    tiny.write_bytes(tiny_onnx_bytes(3.0, dynamic_batch=True))
    engine = OpenVinoEngine(tiny, cache_dir=cache)
    np.testing.assert_allclose(engine.run({"x": x, "y": x})["out"], 4 * x)
    assert len(list(cache.glob("*.blob"))) == 2 and stamp_path(blobs[0]).is_file()


def test_a_corrupt_or_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        OpenVinoEngine(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07 not a protobuf")
    with pytest.raises(EngineError, match=r"OpenVINO could not compile bad\.onnx"):
        OpenVinoEngine(bad)


class _FailingCore(openvino.Core):  # type: ignore[misc,name-defined]
    """OpenVINO's Core whose compile step fails as a plugin does on an unsupported op."""

    def compile_model(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Exception from src/plugins/intel_cpu: Unsupported operation "
                           "of type: FakeOp")


def test_a_compile_failure_falls_back_with_the_reason_in_log_and_doctor(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from engines import doctor

    monkeypatch.setattr(openvino, "Core", _FailingCore)
    models_dir = tmp_path / "models"
    cache = models_dir / "engines"
    with caplog.at_level(logging.WARNING, logger="engines.registry"), \
            pytest.raises(NoEngineAvailable) as info:
        registry.open_engine(tiny, "openvino", cache_dir=cache)
    assert "Unsupported operation of type: FakeOp" in info.value.reasons["openvino"]
    assert "openvino could not open tiny.onnx" in caplog.text
    assert "Unsupported operation" in read_failures(cache)["tiny.onnx"]
    rows = dict(doctor.collect(models_dir)[
        "Models a runtime could not compile (the next runtime was used)"])
    assert "FakeOp" in rows["openvino: tiny.onnx"]
    # with the real Core back, a successful compile clears the record
    monkeypatch.undo()
    OpenVinoEngine(tiny, cache_dir=cache).close()
    assert read_failures(cache) == {} and (cache / FAILURES_FILE).is_file()


def test_registry_lists_openvino_and_names_it_in_status(tiny: Path) -> None:
    assert registry.BACKENDS[-1] == "openvino"
    assert registry.backend_status()["openvino"] is None
    assert registry.open_engine(tiny, "openvino").backend == "openvino"


def test_auto_falls_back_to_openvino_when_onnxruntime_is_missing(
    tiny: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import sys

    monkeypatch.setitem(sys.modules, "engines.tensorrt", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    engine = registry.open_engine(tiny, "auto")
    assert engine.backend == "openvino"
