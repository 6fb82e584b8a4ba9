"""TensorRT runtime: availability here, and the GPU checks (skipped without TensorRT + GPU)."""

from __future__ import annotations

import sys
import threading
import types
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from engines import tensorrt as trt_engine
from engines.base import EngineError, EngineUnavailable
from tests import fake_cuda
from tests import fake_tensorrt as fake

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
    from engines.registry import tensorrt_builder

    onnx_path = _tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(EngineUnavailable) as info:
        trt_engine.open_tensorrt_engine(
            onnx_path, build=tensorrt_builder(onnx_path, tmp_path / "engines", 8, 1),
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


def _open(onnx_path: Path, cache: Path, precision: str) -> trt_engine.TensorRTEngine:
    from engines.registry import tensorrt_builder

    build = tensorrt_builder(onnx_path, cache, trt_engine.MAX_BATCH, trt_engine.OPT_BATCH)
    return trt_engine.open_tensorrt_engine(onnx_path, build=build, precision=precision)


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
    engine = _open(generator_224, tmp_path, precision)
    try:
        out = engine.run(feeds)["output"]
        assert out.shape == reference.shape and max_abs_error(reference, out) < bound
        assert not engine.fell_back
        # three faces in one call (the profile is 1..8), each as if alone
        many = {k: np.repeat(v, 3, axis=0) for k, v in feeds.items()}
        batched = engine.run(many)["output"]
        assert batched.shape[0] == 3 and max_abs_error(reference, batched[2:]) < bound
    finally:
        engine.close()


@pytest.mark.gpu
@gpu
def test_nan_output_switches_to_the_fp32_engine(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from export.tensorrt import ensure_engine

    nan_engine = ensure_engine(_tiny_onnx(tmp_path / "sqrt.onnx", "Sqrt"), tmp_path / "e")
    good_engine = ensure_engine(_tiny_onnx(tmp_path / "abs.onnx", "Abs"), tmp_path / "e")
    fallback = trt_engine.Fp32Fallback(lambda: good_engine, "tiny")
    assert fallback.wait(60) == good_engine
    engine = trt_engine.TensorRTEngine(nan_engine, fallback=fallback, name="tiny")
    x = np.array([[-4.0, -1.0, 1.0, 4.0]], np.float32)
    with caplog.at_level("WARNING"):
        out = engine.run({"x": x})["y"]
        again = engine.run({"x": x})["y"]
    assert engine.fell_back
    np.testing.assert_allclose(out, np.abs(x))  # the bad frame itself was re-run
    np.testing.assert_allclose(again, np.abs(x))
    assert sum("NaN/Inf" in r.message for r in caplog.records) == 1  # told once


# --- the runtime on a strict tensorrt double, on torch's CPU device ----------------------------
#
# tests/fake_tensorrt.py enforces what TensorRT enforces (profile range in set_input_shape,
# one thread per execution context, None from create_execution_context, TypeError from a
# Runtime that cannot initialise CUDA) and computes on the bound memory by address, so the
# runtime's real code (binding, batching, chunking, threads, fallback) runs unchanged.


def _batch_profile(rows: int, *tail: int) -> tuple[tuple[int, ...], ...]:
    return ((1, *tail), (1, *tail), (rows, *tail))


def _engine_file(path: Path, op: str, max_batch: int = 8) -> Path:
    profile = {"target": _batch_profile(max_batch, 3, 4, 4), "source": _batch_profile(max_batch, 8)}
    path.write_bytes(fake.engine_bytes({"target": (-1, 3, 4, 4), "source": (-1, 8)},
                                       {"output": (-1, 3, 4, 4)}, op=op, profile=profile))
    return path


def _feeds(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"target": rng.standard_normal((rows, 3, 4, 4)).astype(np.float32),
            "source": rng.standard_normal((rows, 8)).astype(np.float32)}


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> fake.Recorder:
    """The strict double as ``tensorrt`` on a machine whose torch "sees" a GPU; engines
    run on torch's CPU device."""

    recorder = fake.Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake.fake_tensorrt(rec=recorder))
    fake_cuda.install(monkeypatch)  # streams, events, graphs; is_available() is True
    monkeypatch.setattr(trt_engine, "DEVICE", "cpu", raising=False)
    from export import tensorrt as trt_export

    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo(recorder.gpu, (8, 9)))
    return recorder


def test_the_double_refuses_a_batch_outside_the_profile(rec: fake.Recorder,
                                                        tmp_path: Path) -> None:
    """A control: the double is as strict as TensorRT's set_input_shape."""
    trt = sys.modules["tensorrt"]
    engine = trt.Runtime(trt.Logger("warning")).deserialize_cuda_engine(
        _engine_file(tmp_path / "e.engine", "abs", max_batch=1).read_bytes())
    context = engine.create_execution_context()
    assert context.set_input_shape("target", (1, 3, 4, 4))
    assert not context.set_input_shape("target", (2, 3, 4, 4))  # main's "batch must be 1..1"
    assert not context.set_input_shape("target", (1, 3, 4, 5))


def test_more_faces_than_one_launch_takes_run_in_chunks(rec: fake.Recorder,
                                                        tmp_path: Path) -> None:
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    assert engine.max_batch == 8
    assert [s.shape for s in engine.inputs] == [("batch", 3, 4, 4), ("batch", 8)]
    for rows, launches in ((1, 1), (2, 1), (8, 1), (11, 2), (17, 3)):
        before = rec.executions
        feeds = _feeds(rows, seed=rows)
        out = engine.run(feeds)["output"]
        np.testing.assert_array_equal(out, np.abs(feeds["target"]))
        assert rec.executions - before == launches


def test_registry_builds_an_engine_that_takes_several_faces(
        rec: fake.Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Defect 1: the registry built a 1..1 profile while the specs said "batch", so two
    faces in one call failed. Now the real export flow builds 1..8 (opt 1)."""
    from engines import registry

    graph = helper.make_graph(
        [helper.make_node("Abs", ["target"], ["output"])], "gen",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, ["batch", 3, 4, 4]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, 4, 4])])
    onnx_path = tmp_path / "gen.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(onnx_path))
    monkeypatch.setitem(sys.modules, "tensorrt", fake.fake_tensorrt(  # the parsed network
        rec=rec, network_inputs={"target": (-1, 3, 4, 4), "source": (-1, 8)}))
    engine = registry.open_engine(onnx_path, "tensorrt", cache_dir=tmp_path / "engines",
                                  precision="fp32")
    try:
        assert engine.backend == "tensorrt"
        assert rec.profiles[0][1:] == _batch_profile(8, 3, 4, 4)
        feeds = _feeds(2)
        np.testing.assert_array_equal(engine.run(feeds)["output"], feeds["target"])
    finally:
        engine.close()


def test_each_calling_thread_gets_its_own_execution_context(rec: fake.Recorder,
                                                            tmp_path: Path) -> None:
    """Defect 2: the process thread and the swap worker may run one engine at once (auto
    mode switching to sync while a job runs); one context must never see two threads."""
    import threading

    import torch

    rec.execute_seconds = 0.01  # launches overlap in time, as real ones do
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            start.wait(5)
            for i in range(10):
                rows = 1 + (seed + i) % 3
                feeds = {k: torch.from_numpy(v) for k, v in _feeds(rows, seed).items()}
                out = engine.run_torch(feeds)["output"]
                assert torch.equal(out, feeds["target"].abs())  # nobody else's rows
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    # one per worker: the one made at open went to the first worker (issue 22 row 5: the
    # opening thread keeps none)
    assert rec.contexts_made == 2


def test_tensorrt_that_cannot_initialise_cuda_is_skipped_with_its_reason(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """Defect 4: trt.Runtime/Builder raise TypeError ("factory function returned nullptr")
    when TensorRT cannot initialise CUDA; auto must fall back, saying why."""
    from engines import registry

    rec.init_fails = True
    reason = trt_engine.unavailable_reason()
    assert reason is not None and "could not initialise CUDA" in reason and "nullptr" in reason
    assert registry.backend_status()["tensorrt"] == reason
    engine = registry.open_engine(_tiny_onnx(tmp_path / "tiny.onnx"), "auto",
                                  cache_dir=tmp_path / "engines")
    try:
        assert engine.backend == "onnxruntime-cpu"
    finally:
        engine.close()
    with pytest.raises(EngineUnavailable, match="could not initialise CUDA"):
        trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")


def test_no_execution_context_is_an_engine_error_and_auto_falls_back(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """Defect 4: create_execution_context() returns None when the GPU is out of memory."""
    from engines import registry

    rec.contexts_left = 0
    with pytest.raises(EngineError, match="out of GPU memory"):
        trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    engine_file = _engine_file(tmp_path / "e.engine", "abs")

    def build(precision: str) -> Path:
        return engine_file

    with pytest.raises(EngineError, match="out of GPU memory"):
        trt_engine.open_tensorrt_engine(tmp_path / "x.onnx", build=build, precision="fp32")
    engine = registry.open_engine(_tiny_onnx(tmp_path / "tiny.onnx"), "auto",
                                  cache_dir=tmp_path / "engines")
    try:
        assert engine.backend == "onnxruntime-cpu"
    finally:
        engine.close()


def test_a_nan_frame_never_waits_for_the_fp32_build(
        rec: fake.Recorder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defect 6: the FP32 engine is built ahead of time on a background thread; a NaN
    frame before it is ready keeps the FP16 engine running instead of building in the
    frame path, and the switch happens on the first NaN check after it is ready."""
    import threading

    fp16_file = _engine_file(tmp_path / "fp16.engine", "sqrt")  # NaN for negative inputs
    fp32_file = _engine_file(tmp_path / "fp32.engine", "abs")
    started, release = threading.Event(), threading.Event()
    asked: list[str] = []

    def build(precision: str) -> Path:
        asked.append(precision)
        if precision == "fp16":
            return fp16_file
        started.set()
        if not release.wait(30):
            raise TimeoutError("the test never released the FP32 build")
        return fp32_file

    engine = trt_engine.open_tensorrt_engine(tmp_path / "g.onnx", build=build, precision="fp16",
                                             fp32_ahead=True)  # the generator's policy
    assert started.wait(5) and asked == ["fp16", "fp32"]  # started at open, before any frame
    feeds = _feeds(2)
    with caplog.at_level("WARNING"):
        first = engine.run(feeds)["output"]  # returns while the FP32 build is still running
        assert not release.is_set() and not engine.fell_back
        assert np.isnan(first).any()
        engine.run(feeds)
        release.set()
        assert isinstance(engine.fallback, trt_engine.Fp32Fallback)
        assert engine.fallback.wait(10) == fp32_file
        out = engine.run(feeds)["output"]
    assert engine.fell_back
    np.testing.assert_array_equal(out, np.abs(feeds["target"]))  # this very frame re-run
    messages = [r.message for r in caplog.records]
    assert sum("not built yet" in m for m in messages) == 1  # told once
    assert sum("switching to the FP32 engine" in m for m in messages) == 1


# --- issue 22: the second reading of the runtime, each row on the strict doubles --------------


def _ready_fallback(engine: trt_engine.TensorRTEngine, path: Path,
                    name: str = "g") -> trt_engine.Fp32Fallback:
    fallback = trt_engine.Fp32Fallback(lambda: path, name, prepare=engine.prepare_fallback)
    assert fallback.wait(10) == path
    engine.fallback = fallback
    return fallback


def _torch_feeds(rows: int, seed: int = 0) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v) for k, v in _feeds(rows, seed).items()}


def test_row3_a_second_call_in_one_frame_does_not_wait_for_the_first(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """Row 3: with a face map each identity is another call in the same frame; the NaN
    flag of the previous call is read only once its copy completed (Event.query), never
    waited for (Event.synchronize on a launch the host has not seen finish)."""
    import torch

    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    engine.fallback = lambda: None  # a fallback exists, so the finite check runs
    fake_cuda.host_waited()
    outs = [engine.run_torch(_torch_feeds(2, seed))["output"].clone() for seed in (1, 2, 3)]
    assert fake_cuda.waits == []
    for seed, out in enumerate(outs, 1):
        assert torch.equal(out, _torch_feeds(2, seed)["target"].abs())


def test_row4_a_nan_in_an_earlier_chunk_is_not_forgotten(rec: fake.Recorder,
                                                         tmp_path: Path) -> None:
    """Row 4: 11 faces run as 8 + 3; a NaN among the first 8 must switch to FP32 even
    though the last chunk is finite."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "fp16.engine", "sqrt"),
                                       device="cpu")
    _ready_fallback(engine, _engine_file(tmp_path / "fp32.engine", "abs"))
    feeds = _feeds(11)
    feeds["target"] = np.abs(feeds["target"])
    feeds["target"][2, 0, 0, 0] = -1.0  # NaN in chunk 1 only
    out = engine.run(feeds)["output"]
    assert engine.fell_back
    np.testing.assert_array_equal(out, np.abs(feeds["target"]))  # this frame re-run on FP32


def test_row5_no_context_or_engine_is_kept_by_the_opening_thread(rec: fake.Recorder,
                                                                 tmp_path: Path) -> None:
    """Row 5: the thread that opens an engine keeps no context of its own, and after the
    FP32 switch nothing keeps the FP16 engine alive."""
    import gc
    import threading
    import weakref

    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "fp16.engine", "sqrt"),
                                       device="cpu")
    made_at_open = rec.contexts_made
    _ready_fallback(engine, _engine_file(tmp_path / "fp32.engine", "abs"))
    fp16_loaded = weakref.ref(engine._state.loaded)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            feeds = _feeds(2)
            engine.run(feeds)  # NaN → switch, on this thread
            np.testing.assert_array_equal(engine.run(feeds)["output"], np.abs(feeds["target"]))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert errors == [] and engine.fell_back
    gc.collect()
    assert fp16_loaded() is None  # the FP16 engine, its contexts and buffers are gone
    # the FP16 context made at open served the worker; the FP32 one was made on the
    # fallback's thread
    assert made_at_open == 1 and rec.contexts_made == 2


def test_row6_out_of_memory_while_opening_is_an_engine_error(
        rec: fake.Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row 6: torch's OutOfMemoryError while binding buffers is an EngineError, so the
    registry falls back instead of the session crashing."""
    import torch

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch, "empty", out_of_memory)
    with pytest.raises(EngineError, match="out of GPU memory"):
        trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")


def test_row6_a_thread_that_gets_no_context_shares_one(
        rec: fake.Recorder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Row 6: a context made lazily for a second thread can fail (out of memory) in the
    live loop; that thread then shares the existing one instead of stopping the pipeline."""
    import threading

    import torch

    rec.contexts_left = 1
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    first = _torch_feeds(3, 1)
    assert torch.equal(engine.run_torch(first)["output"], first["target"].abs())
    got: list[Any] = []

    def worker() -> None:
        try:
            feeds = _torch_feeds(2, 2)
            got.append(torch.equal(engine.run_torch(feeds)["output"], feeds["target"].abs()))
        except BaseException as exc:
            got.append(exc)

    with caplog.at_level("WARNING"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(30)
    assert got == [True] and "share one" in caplog.text


def test_row7_the_fp32_engine_is_loaded_off_the_frame_thread_and_never_rechecked(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """Row 7: the FP32 engine is deserialised and its context made on the fallback's build
    thread; once on FP32 a non-finite output is kept (nothing to fall back to), not re-run."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "fp16.engine", "sqrt"),
                                       device="cpu")
    _ready_fallback(engine, _engine_file(tmp_path / "fp32.engine", "sqrt"), "gen")
    assert rec.deserialized_on == ["MainThread", "fp32-build-gen"]
    feeds = _feeds(2)
    feeds["target"][0, 0, 0, 0] = -1.0
    engine.run(feeds)  # NaN → switch, re-run on FP32 (still NaN: the op is sqrt)
    assert engine.fell_back and rec.deserialized_on == ["MainThread", "fp32-build-gen"]
    before = rec.executions
    for _ in range(3):
        assert np.isnan(engine.run(feeds)["output"]).any()
    assert rec.executions - before == 3  # one launch per frame, no re-runs


def test_row12_feed_shapes_are_checked_on_the_device_path(rec: fake.Recorder,
                                                          tmp_path: Path) -> None:
    """Row 12: a (1, 8) identity beside 4 faces is refused, not broadcast."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    feeds = _torch_feeds(4)
    feeds["source"] = feeds["source"][:1]
    with pytest.raises(EngineError, match="same number of rows"):
        engine.run_torch(feeds)
    with pytest.raises(EngineError, match="expected shape"):
        engine.run_torch({**_torch_feeds(2), "source": _torch_feeds(2)["source"][:, :4]})
    with pytest.raises(EngineError, match="inputs"):
        engine.run_torch({"target": _torch_feeds(2)["target"]})


def test_row12_a_refused_address_is_an_engine_error(rec: fake.Recorder, tmp_path: Path) -> None:
    rec.host_ranges.append((0, 1 << 63))  # every address the double sees counts as host
    with pytest.raises(EngineError, match="set_tensor_address returned False"):
        trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")


@pytest.mark.parametrize("kind,numpy_name", [("HALF", "float16"), ("BF16", "float32"),
                                             ("INT32", "int32")])
def test_row12_specs_carry_numpy_dtypes_and_typed_tensors_run(
        rec: fake.Recorder, tmp_path: Path, kind: str, numpy_name: str) -> None:
    profile = {"target": _batch_profile(8, 3, 4, 4), "source": _batch_profile(8, 8)}
    path = tmp_path / "e.engine"
    path.write_bytes(fake.engine_bytes({"target": (-1, 3, 4, 4), "source": (-1, 8)},
                                       {"output": (-1, 3, 4, 4)}, op="abs", profile=profile,
                                       dtypes={"target": kind, "output": kind}))
    engine = trt_engine.TensorRTEngine(path, device="cpu")
    specs = {s.name: s.dtype for s in (*engine.inputs, *engine.outputs)}
    assert specs == {"target": numpy_name, "source": "float32", "output": numpy_name}
    feeds = _feeds(3)
    feeds["target"] = np.round(feeds["target"] * 4).astype(numpy_name)
    out = engine.run(feeds)["output"]
    assert out.dtype == np.dtype(numpy_name)
    np.testing.assert_array_equal(out, np.abs(feeds["target"]))


def test_row2_only_the_generator_builds_its_fp32_engine_ahead(rec: fake.Recorder,
                                                              tmp_path: Path) -> None:
    """Row 2: the generator's FP32 fallback is built at open; every other FP16 engine
    (parser, detector, encoders) builds it only on its first NaN frame."""
    fp16_file = _engine_file(tmp_path / "fp16.engine", "sqrt")
    fp32_file = _engine_file(tmp_path / "fp32.engine", "abs")
    asked: list[tuple[str, str]] = []

    def builder(name: str) -> trt_engine.BuildFunction:
        def build(precision: str) -> Path:
            asked.append((name, precision))
            return fp16_file if precision == "fp16" else fp32_file

        return build

    engines = {name: trt_engine.open_tensorrt_engine(
        tmp_path / name / f"{name}.onnx", build=builder(name), precision="fp16")
        for name in ("simswap-224", "face-parsing", "scrfd-10g")}
    fallbacks = {n: e.fallback for n, e in engines.items()}
    assert all(isinstance(f, trt_engine.Fp32Fallback) for f in fallbacks.values())
    assert {n for n, f in fallbacks.items() if f.started} == {"simswap-224"}  # type: ignore[union-attr]
    assert trt_engine.builds_fp32_ahead(tmp_path / "inswapper_128.onnx")
    parser = engines["face-parsing"]
    feeds = _feeds(2)
    feeds["target"][0, 0, 0, 0] = -1.0
    parser.run(feeds)  # the first NaN starts the parser's build
    assert fallbacks["face-parsing"].started  # type: ignore[union-attr]
    assert fallbacks["face-parsing"].wait(10) == fp32_file  # type: ignore[union-attr]
    np.testing.assert_array_equal(parser.run(feeds)["output"], np.abs(feeds["target"]))
    assert parser.fell_back and not engines["scrfd-10g"].fallback.started  # type: ignore[union-attr]


def test_row5_a_thread_that_ended_leaves_its_context_to_the_next(rec: fake.Recorder,
                                                                 tmp_path: Path) -> None:
    """Row 5: a restarted swap worker reuses the context of the one that ended instead of
    each worker keeping one forever."""
    import threading

    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"), device="cpu")
    for seed in range(3):  # three workers, one after the other
        thread = threading.Thread(target=engine.run_torch, args=(_torch_feeds(2, seed),))
        thread.start()
        thread.join(10)
    assert rec.contexts_made == 1


# --- issue 25: leftovers -----------------------------------------------------------------


def _static_engine_file(path: Path, batch: int) -> Path:
    path.write_bytes(fake.engine_bytes({"target": (batch, 3, 4, 4), "source": (batch, 8)},
                                       {"output": (batch, 3, 4, 4)}, op="abs"))
    return path


def test_a_static_engine_runs_a_partial_last_chunk(rec: fake.Recorder, tmp_path: Path) -> None:
    """A static batch-4 engine with 6 faces: 4, then 2 in a padded launch. Before: the
    second chunk asked for batch 2 and raised."""
    engine = trt_engine.TensorRTEngine(_static_engine_file(tmp_path / "s.engine", 4),
                                       device="cpu")
    assert engine.max_batch == 4
    for rows, launches in ((6, 2), (1, 1), (4, 1)):
        feeds = _feeds(rows, seed=rows)
        before = rec.executions
        out = engine.run(feeds)["output"]
        np.testing.assert_array_equal(out, np.abs(feeds["target"]))
        assert rec.executions - before == launches


def test_no_finite_check_without_a_fallback(rec: fake.Recorder, tmp_path: Path) -> None:
    """An FP32 engine (no fallback) runs no NaN check: no flag copy, no event. Before:
    every engine checked, for nothing to fall back to."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "sqrt"),
                                       device="cpu")
    engine.run_torch(_torch_feeds(2, 1))
    context = engine._state.by_thread[threading.get_ident()]
    assert not context.flag_pending
    engine.fallback = lambda: None
    engine.run_torch(_torch_feeds(2, 1))
    assert context.flag_pending


def test_a_thread_holding_the_fp16_state_after_the_switch_gets_no_fp16_context(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """A thread that read the FP16 state just before another switched to FP32 must not make
    a fresh FP16 context on the retired engine (memory the switch meant to free). Before: it
    did."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"),
                                       device="cpu")
    old = engine._state
    fp32 = engine.prepare_fallback(_engine_file(tmp_path / "f.engine", "abs"))
    assert fp32.spare == []  # FP32 contexts are made lazily, by their threads
    engine._state = fp32
    old.retire()
    made = rec.contexts_made
    context = engine._context(old)
    assert context.loaded is fp32.loaded and old.by_thread == {}
    assert rec.contexts_made == made + 1  # the FP32 one, on first use


def test_an_unreadable_engine_file_is_an_engine_error(rec: fake.Recorder,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file.engine"
    folder.mkdir()  # read_bytes raises IsADirectoryError (an OSError)
    with pytest.raises(EngineError, match="could not be read"):
        trt_engine.TensorRTEngine(folder, device="cpu")


def test_ensure_engine_turns_a_corrupt_onnx_and_a_failed_write_into_engine_errors(
        rec: fake.Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a DecodeError (corrupt ONNX) or an OSError (disk full) ended the caller
    instead of sending the registry to the next backend."""
    from export import tensorrt as trt_export

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\xff\xff\xff garbage that is no protobuf")
    with pytest.raises(EngineError, match=r"DecodeError|could not be made"):
        trt_export.ensure_engine(corrupt, tmp_path / "cache")

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trt_export, "write_atomic", full_disk)
    onnx_path = tmp_path / "ok.onnx"
    _tiny_onnx(onnx_path)
    with pytest.raises(EngineError, match="No space left"):
        trt_export.ensure_engine(onnx_path, tmp_path / "cache")


def test_the_numpy_run_uploads_through_pinned_memory(rec: fake.Recorder,
                                                     tmp_path: Path) -> None:
    """The numpy path's uploads are page-locked and asynchronous; its one wait is its
    download, on the calling thread's stream. Before: a pageable upload per input (each a
    host wait)."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"),
                                       device="cpu")
    engine.run(_feeds(2))  # warm: this thread's context
    before = fake_cuda.thread_waits(threading.current_thread().name)
    engine.run(_feeds(2))
    after = fake_cuda.thread_waits(threading.current_thread().name)
    after.subtract(before)
    assert +after == Counter({"pin_memory": 2, "Tensor.cpu": 1}), after


def test_the_fp32_fallback_holds_no_context_memory_until_the_switch(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """Room for one context and a half: the FP16 engine's context fits, and the FP32
    fallback, deserialised ahead, takes none until a thread uses it after the switch.
    Before: the fallback made a context at once, which did not fit (the open failed)."""
    rec.device_bytes_left = rec.context_bytes * 3 // 2
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"),
                                       device="cpu")
    engine.prepare_fallback(_engine_file(tmp_path / "f.engine", "abs"))
    assert rec.device_bytes_left == rec.context_bytes // 2
    engine.run(_feeds(1))  # the FP16 engine still runs on its context


def test_the_switch_to_fp32_never_waits_for_another_threads_engine_work(
        rec: fake.Recorder, tmp_path: Path) -> None:
    """The thread that sees the NaN flag switches engines; the FP16 contexts (another
    thread's among them, with its launch still queued) are released on a thread of their
    own once their work is done. Before: the switching thread synchronised every FP16
    context's stream, waiting for the other thread's engine work."""
    engine = trt_engine.TensorRTEngine(_engine_file(tmp_path / "e.engine", "abs"),
                                       device="cpu")

    class Ready:
        def __init__(self) -> None:
            self.ready = engine.prepare_fallback(_engine_file(tmp_path / "f.engine", "abs"))

        def __call__(self) -> Path:
            return tmp_path / "f.engine"

    engine.fallback = Ready()

    def other() -> None:
        with torch.cuda.stream(torch.cuda.Stream()):
            engine.run_torch(_torch_feeds(2, 1))  # queued, never waited for

    worker = threading.Thread(target=other, name="other-thread")
    worker.start()
    worker.join(10)
    old = engine._state
    assert engine._switch_to_fp32(old) and engine._state is not old
    me = threading.current_thread().name
    assert (me, "other-thread") not in fake_cuda.cross_waits
    assert fake_cuda.thread_waits(me)["Stream.synchronize"] == 0
    for thread in [t for t in threading.enumerate() if t.name.startswith("retire-")]:
        thread.join(10)
    assert old.retired and old.by_thread == {} and old.spare == []
