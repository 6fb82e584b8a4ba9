"""OnnxRuntimeEngine on tiny ONNX graphs built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.base import Engine, EngineError, EngineUnavailable, ModelFileError, TensorSpec
from engines.onnxruntime import OnnxRuntimeEngine, cuda_unavailable_reason
from tests.engines import tiny_onnx_bytes


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_onnx_bytes(3.0))
    return path


def test_runs_and_matches_numpy(tiny: Path) -> None:
    engine = OnnxRuntimeEngine(tiny, threads=1)
    assert isinstance(engine, Engine)
    assert engine.backend == "onnxruntime-cpu"
    assert engine.inputs == (TensorSpec("x", (1, 3), "float32"),
                             TensorSpec("y", (1, 3), "float32"))
    assert engine.outputs == (TensorSpec("out", (1, 3), "float32"),)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3), dtype=np.float32)
    y = rng.standard_normal((1, 3), dtype=np.float32)
    out = engine.run({"x": x, "y": y})
    assert set(out) == {"out"}
    np.testing.assert_allclose(out["out"], x * 3.0 + y, rtol=1e-6)
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.run({"x": x, "y": y})


def test_dynamic_dimensions_are_named(tmp_path: Path) -> None:
    path = tmp_path / "dyn.onnx"
    path.write_bytes(tiny_onnx_bytes(dynamic_batch=True))
    with OnnxRuntimeEngine(path) as engine:
        assert engine.inputs[0].shape == ("batch", 3)
        x = np.ones((4, 3), np.float32)
        assert engine.run({"x": x, "y": x})["out"].shape == (4, 3)


def test_feeds_are_checked_got_vs_expected(tiny: Path) -> None:
    engine = OnnxRuntimeEngine(tiny)
    x = np.zeros((1, 3), np.float32)
    with pytest.raises(EngineError, match=r"expected \['x', 'y'\], got \['x'\]"):
        engine.run({"x": x})
    with pytest.raises(EngineError, match=r"expected shape \(1, 3\), got \(2, 3\)"):
        engine.run({"x": np.zeros((2, 3), np.float32), "y": x})
    with pytest.raises(EngineError, match="expected dtype float32, got float64"):
        engine.run({"x": x.astype(np.float64), "y": x})


def test_truncated_onnx_is_a_model_file_error_naming_the_file(tmp_path: Path) -> None:
    data = tiny_onnx_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"truncated\.onnx"):
        OnnxRuntimeEngine(path)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "page.onnx"
    garbage.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ModelFileError, match=r"page\.onnx"):
        OnnxRuntimeEngine(garbage)
    with pytest.raises(ModelFileError, match=r"absent\.onnx"):
        OnnxRuntimeEngine(tmp_path / "absent.onnx")


def test_cuda_without_provider_is_unavailable_with_reason(tiny: Path) -> None:
    if cuda_unavailable_reason() is None:
        pytest.skip("this onnxruntime has CUDAExecutionProvider")
    with pytest.raises(EngineUnavailable) as info:
        OnnxRuntimeEngine(tiny, device="cuda")
    assert info.value.backend == "onnxruntime-cuda"
    assert "CUDAExecutionProvider" in info.value.reason
    assert "onnxruntime-gpu" in info.value.hint


@pytest.mark.gpu
def test_cuda_runs_when_available(tiny: Path) -> None:
    if cuda_unavailable_reason() is not None:
        pytest.skip(f"no ORT CUDA: {cuda_unavailable_reason()}")
    try:
        engine = OnnxRuntimeEngine(tiny, device="cuda")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(engine.run({"x": x, "y": x})["out"], x * 3 + x)
    assert engine.providers[0] == "CUDAExecutionProvider"


def test_threads_cap_intra_op_and_stop_spinning(tiny: Path) -> None:
    spin = "session.intra_op.allow_spinning"
    with OnnxRuntimeEngine(tiny, threads=2) as capped:
        assert capped.threads == 2
        assert capped._session.get_session_options().intra_op_num_threads == 2
        assert capped.session_config(spin) == "0"
    with OnnxRuntimeEngine(tiny) as default:
        assert default.threads is None
        assert default.session_config(spin) is None  # ORT's own default (spinning)
    with pytest.raises(ValueError, match="threads: expected >= 1 or None, got 0"):
        OnnxRuntimeEngine(tiny, threads=0)


def _slow_onnx(path: Path, steps: int = 300) -> Path:
    """``x @ W`` applied ``steps`` times to [N, 1024]: seconds per run at N = 1024."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        (np.eye(1024, dtype=np.float32) * 0.999), name="w")
    nodes = []
    previous = "x"
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"h{i}"]))
        previous = f"h{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1024])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_cancel_ends_a_run_in_progress(tmp_path: Path) -> None:
    """Issue 15 item 5: Ctrl-C waited for the swap in progress (11.6 s)."""
    import threading
    import time

    engine = OnnxRuntimeEngine(_slow_onnx(tmp_path / "slow.onnx"), threads=1)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(engine.run({"x": np.ones((1024, 1024), np.float32)}))
        except EngineError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # still computing
    start = time.monotonic()
    engine.cancel()
    thread.join(5.0)
    assert not thread.is_alive() and time.monotonic() - start < 2.0
    assert isinstance(outcome[0], EngineError)
    # later runs work again
    small = engine.run({"x": np.ones((1, 1024), np.float32)})["y"]
    assert small.shape == (1, 1024) and np.isfinite(small).all()
