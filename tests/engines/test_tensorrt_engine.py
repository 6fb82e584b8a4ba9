"""TensorRT runtime: availability here, and the GPU checks (skipped without TensorRT + GPU)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from engines import tensorrt as trt_engine
from engines.base import EngineError, EngineUnavailable

REASON = trt_engine.unavailable_reason()
gpu = pytest.mark.skipif(REASON is not None, reason=f"TensorRT unusable here: {REASON}")


def _tiny_onnx(path: Path, op: str = "Sqrt") -> Path:
    """y = op(x) on [1, 4]: Sqrt gives NaN for negative x in any precision."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


# --- runnable everywhere ---------------------------------------------------------------------


def test_unavailable_reason_names_the_cause_and_the_fix() -> None:
    if REASON is None:
        pytest.skip("TensorRT and a GPU are present")
    assert "TensorRT" in REASON or "CUDA" in REASON
    assert "pip install" in REASON


def test_type_stubs_alone_do_not_count_as_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    stub_only = types.ModuleType("tensorrt")  # what tensorrt-stubs' bare folder imports as
    monkeypatch.setitem(sys.modules, "tensorrt", stub_only)
    with pytest.raises(EngineUnavailable, match="only its type stubs") as info:
        trt_engine.load_tensorrt()
    assert info.value.backend == "tensorrt" and "pypi.nvidia.com" in info.value.hint
    assert "only its type stubs" in (trt_engine.unavailable_reason() or "")


def test_missing_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ImportError
    reason = trt_engine.unavailable_reason()
    assert reason is not None and "not installed" in reason and "tensorrt-cu12" in reason


def test_open_raises_engine_unavailable_here(tmp_path: Path) -> None:
    if REASON is None:
        pytest.skip("TensorRT and a GPU are present")
    onnx_path = _tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(EngineUnavailable) as info:
        trt_engine.open_tensorrt_engine(onnx_path, cache_dir=tmp_path / "engines",
                                        precision="fp16")
    assert info.value.backend == "tensorrt" and info.value.reason == REASON
    assert not (tmp_path / "engines").exists()


def test_registry_skips_tensorrt_with_its_reason(tmp_path: Path) -> None:
    if REASON is None:
        pytest.skip("TensorRT and a GPU are present")
    from engines import registry

    status = registry.backend_status()
    assert status["tensorrt"] is not None and "tensorrt" in status["tensorrt"].lower()
    engine = registry.open_engine(_tiny_onnx(tmp_path / "tiny.onnx"), "auto")
    try:
        assert engine.backend != "tensorrt"
    finally:
        engine.close()


def test_dtype_names() -> None:
    assert trt_engine.torch_dtype_name("HALF") == "float16"
    assert trt_engine.torch_dtype_name("FLOAT") == "float32"
    with pytest.raises(EngineError, match="expected one of"):
        trt_engine.torch_dtype_name("FP8")


# --- GPU only --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator_224(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SimSwap 224 architecture, random weights, exported to ONNX once."""
    import torch

    from bench import bench_fp16

    folder = tmp_path_factory.mktemp("gen224")
    model = bench_fp16.make_real(0)
    path = folder / "simswap-224.onnx"
    onnx.save(bench_fp16.export_onnx(model.to(torch.float32), 224), str(path))
    return path


def _face_feeds() -> dict[str, np.ndarray]:
    from bench import bench_fp16

    source = np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32)
    return {"target": bench_fp16.face_crops(224)[0], "source": source / np.linalg.norm(source)}


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision,bound", [("fp32", 2e-3), ("fp16", 2e-2)])
def test_generator_engine_matches_onnxruntime(generator_224: Path, tmp_path: Path,
                                              precision: str, bound: float) -> None:
    # fp32 bound: TF32 convolutions; fp16 bound: a few FP16 ulps over ~30 layers (the CPU
    # measurement in bench_fp16 gives ~1e-3 for this architecture).
    from export.fp16 import max_abs_error, run_onnx

    feeds = _face_feeds()
    reference = run_onnx(onnx.load(str(generator_224)), feeds)
    engine = trt_engine.open_tensorrt_engine(generator_224, cache_dir=tmp_path,
                                             precision=precision)
    try:
        out = engine.run(feeds)["output"]
        assert out.shape == reference.shape and max_abs_error(reference, out) < bound
        assert not engine.fell_back
    finally:
        engine.close()


@pytest.mark.gpu
@gpu
def test_cuda_graph_replay_equals_a_normal_call(generator_224: Path, tmp_path: Path) -> None:
    import torch

    feeds = {k: torch.from_numpy(v).cuda() for k, v in _face_feeds().items()}
    plain = trt_engine.open_tensorrt_engine(generator_224, cache_dir=tmp_path, precision="fp16")
    graphed = trt_engine.open_tensorrt_engine(generator_224, cache_dir=tmp_path,
                                              precision="fp16", use_cuda_graph=True)
    try:
        expected = plain.run_torch(feeds)["output"].clone()
        for _ in range(3):  # replays reuse the same buffers
            got = graphed.run_torch(feeds)["output"]
        torch.cuda.synchronize()
        assert torch.equal(expected, got)
    finally:
        plain.close()
        graphed.close()


@pytest.mark.gpu
@gpu
def test_nan_output_switches_to_the_fp32_engine(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from export.tensorrt import ensure_engine

    nan_engine = ensure_engine(_tiny_onnx(tmp_path / "sqrt.onnx", "Sqrt"), tmp_path / "e")
    good_engine = ensure_engine(_tiny_onnx(tmp_path / "abs.onnx", "Abs"), tmp_path / "e")
    engine = trt_engine.TensorRTEngine(nan_engine, fallback=lambda: good_engine, name="tiny")
    x = np.array([[-4.0, -1.0, 1.0, 4.0]], np.float32)
    with caplog.at_level("WARNING"):
        out = engine.run({"x": x})["y"]
        again = engine.run({"x": x})["y"]
    assert engine.fell_back
    np.testing.assert_allclose(out, np.abs(x))  # the bad frame itself was re-run
    np.testing.assert_allclose(again, np.abs(x))
    assert sum("NaN/Inf" in r.message for r in caplog.records) == 1  # told once
