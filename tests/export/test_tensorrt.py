"""Engine building: the pure parts, and the build flow against a fake ``tensorrt`` module.

The fake is the lowest level there is: a module object standing in for ``import tensorrt``,
exposing (TensorRT 10) or omitting (TensorRT 11) ``BuilderFlag.FP16``; our code runs
unchanged on top of it and the fake records what was asked of TensorRT.
"""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto

from engines.base import EngineUnavailable
from export import fp16
from export import tensorrt as trt_export
from tests import fake_tensorrt as fake
from tests.fake_tensorrt import Recorder, fake_tensorrt

ROOT = Path(__file__).resolve().parents[2]
BASE_KEY = dict(onnx_sha256="a" * 64, tensorrt_version="10.13.0.35", gpu_name="NVIDIA RTX 4090",
                compute_capability=(8, 9), precision="fp16",
                shapes={"target": (1, 3, 224, 224), "source": (1, 512)})


# --- cache key -------------------------------------------------------------------------------


def test_cache_key_is_stable_and_order_free() -> None:
    key = trt_export.cache_key(**BASE_KEY)  # type: ignore[arg-type]
    assert len(key) == 64 and int(key, 16) >= 0
    reordered = dict(BASE_KEY, shapes={"source": (1, 512), "target": (1, 3, 224, 224)})
    assert trt_export.cache_key(**reordered) == key  # type: ignore[arg-type]


@pytest.mark.parametrize("component,value", [
    ("onnx_sha256", "b" * 64),
    ("tensorrt_version", "11.0.0.1"),
    ("gpu_name", "NVIDIA GeForce RTX 3060"),
    ("compute_capability", (8, 6)),
    ("precision", "fp32"),
    ("shapes", {"target": (4, 3, 224, 224), "source": (4, 512)}),
])
def test_cache_key_changes_with_each_component(component: str, value: object) -> None:
    changed = dict(BASE_KEY, **{component: value})
    assert trt_export.cache_key(**changed) != trt_export.cache_key(**BASE_KEY)  # type: ignore[arg-type]


def test_cache_key_rejects_unknown_precision() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        trt_export.cache_key(**dict(BASE_KEY, precision="int8"))  # type: ignore[arg-type]


def test_engine_and_timing_cache_paths(tmp_path: Path) -> None:
    gpu = trt_export.GpuInfo("NVIDIA GeForce RTX 4090", (8, 9))
    assert trt_export.engine_file(tmp_path, "k" * 8, "simswap-224-fp16") == \
        tmp_path / "simswap-224-fp16-kkkkkkkk.engine"
    cache = trt_export.timing_cache_file(tmp_path, "10.13.0.35", gpu)
    assert cache.parent == tmp_path and "nvidia-geforce-rtx-4090" in cache.name
    assert "sm89" in cache.name and "10.13.0.35" in cache.name


# --- TensorRT 10 / 11 path choice --------------------------------------------------------------


def _module(*, fp16_flag: bool, strongly_typed: bool = True) -> types.ModuleType:
    return fake.module(fp16_flag=fp16_flag, strongly_typed=strongly_typed)


def test_path_choice_tensorrt10_is_strongly_typed_too() -> None:
    """Issue 22 row 10: weak typing (BuilderFlag.FP16) is deprecated since 10.12; TensorRT
    10 builds strongly typed as 11 does. The FP16 flag only for a module without it."""
    assert trt_export.choose_build_path(_module(fp16_flag=True), "fp16") == "strongly-typed"
    assert trt_export.choose_build_path(_module(fp16_flag=True), "fp32") == "fp32"
    old = _module(fp16_flag=True, strongly_typed=False)
    assert trt_export.choose_build_path(old, "fp16") == "fp16-flag"


def test_path_choice_tensorrt11_uses_a_strongly_typed_network() -> None:
    assert trt_export.choose_build_path(_module(fp16_flag=False), "fp16") == "strongly-typed"
    assert trt_export.choose_build_path(_module(fp16_flag=False), "fp32") == "fp32"


def test_path_choice_without_either_mechanism_is_unavailable() -> None:
    with pytest.raises(EngineUnavailable, match="neither"):
        trt_export.choose_build_path(_module(fp16_flag=False, strongly_typed=False), "fp16")
    with pytest.raises(ValueError, match="expected one of"):
        trt_export.choose_build_path(_module(fp16_flag=True), "int8")


# --- layer selection, shapes, parser errors ----------------------------------------------------


@pytest.fixture(scope="module")
def generator_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bench import bench_fp16

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(bench_fp16.export_onnx(bench_fp16.make_tiny(0), 64), str(path))
    return path


def test_layers_to_pin_follow_the_onnx_nodes(generator_onnx: Path) -> None:
    model = onnx.load(str(generator_onnx))
    fp32_nodes = fp16.fp32_node_names(model)
    norm = next(n.name for n in model.graph.node if n.op_type == "InstanceNormalization")
    # sorted: set order follows the per-process hash seed, and the test must not depend on it
    style = next(n for n in sorted(fp32_nodes) if n != norm and "Mul" in n)
    conv = next(n.name for n in model.graph.node if n.op_type == "Conv")
    style_out = next(n.output[0] for n in model.graph.node if n.name == style)
    layers: list[tuple[str, str, tuple[str, ...]]] = [
        (conv, "CONVOLUTION", ("conv_out",)),
        (norm, "NORMALIZATION", ("norm_out",)),
        ("an unnamed normalization", "NORMALIZATION", ()),  # pinned by its type alone
        (style, "ELEMENTWISE", ()),
        (f"{style}_1", "ELEMENTWISE", ()),  # a second layer the parser made from the node
        (f"{style}Z", "ELEMENTWISE", ()),  # another node whose name merely starts the same
        ("/blocks.0/Relu", "ACTIVATION", ("relu_out",)),
        ("node_of_unnamed_mul", "ELEMENTWISE", (style_out,)),  # matched by its output tensor
    ]
    tensors = fp16.fp32_tensor_names(model)
    assert style_out in tensors
    assert trt_export.layers_to_pin_fp32(layers, fp32_nodes, tensors) == [1, 2, 3, 4, 7]
    assert trt_export.layers_to_pin_fp32(layers[:1], fp32_nodes, tensors) == []


def test_a_node_named_like_another_nodes_layer_is_not_pinned_with_it() -> None:
    # onnx-tensorrt names a node's second layer "<node>_1", but "/x/Mul_1" is also how the
    # exporter names the next Mul: with the graph's node names known, it is its own node.
    layers = [("/x/Mul", "ELEMENTWISE", ()), ("/x/Mul_1", "ELEMENTWISE", ()),
              ("/x/Mul_2", "ELEMENTWISE", ()), ("/x/Add_1", "ELEMENTWISE", ())]
    nodes = {"/x/Mul", "/x/Mul_1", "/x/Add"}
    assert trt_export.layers_to_pin_fp32(layers, {"/x/Mul", "/x/Add"}, all_nodes=nodes) == \
        [0, 2, 3]  # /x/Mul_2 and /x/Add_1 are extra layers of pinned nodes
    assert trt_export.layers_to_pin_fp32(layers, {"/x/Mul_1"}, all_nodes=nodes) == [1]


def test_unnamed_nodes_are_not_lumped_together(generator_onnx: Path) -> None:
    model = onnx.load(str(generator_onnx))
    for node in model.graph.node:
        node.name = ""
    assert fp16.fp32_node_names(model) == set()
    tensors = fp16.fp32_tensor_names(model)
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert {n.output[0] for n in norms} <= tensors
    assert not any(n.output[0] in tensors for n in model.graph.node if n.op_type == "Conv")


def test_static_shapes_and_batch_profile() -> None:
    shapes = trt_export.static_shapes({"target": ("batch", 3, 224, 224), "source": (1, 512)},
                                      batch=4)
    assert shapes == {"target": (4, 3, 224, 224), "source": (1, 512)}
    with pytest.raises(trt_export.EngineBuildError, match="expected static shape"):
        trt_export.static_shapes({"target": (1, 3, "h", "w")})
    profile = trt_export.batch_profile({"target": (4, 3, 224, 224)}, 4)
    assert profile == {"target": ((1, 3, 224, 224), (1, 3, 224, 224), (4, 3, 224, 224))}
    profile = trt_export.batch_profile({"target": (8, 3, 224, 224)}, 8, opt_batch=2)
    assert profile == {"target": ((1, 3, 224, 224), (2, 3, 224, 224), (8, 3, 224, 224))}
    with pytest.raises(ValueError, match="max_batch"):
        trt_export.batch_profile({"target": (1, 3, 8, 8)}, 0)
    with pytest.raises(ValueError, match="opt_batch"):
        trt_export.batch_profile({"target": (1, 3, 8, 8)}, 4, opt_batch=5)


def test_onnx_input_shapes(generator_onnx: Path) -> None:
    shapes = trt_export.onnx_input_shapes(generator_onnx)
    assert shapes == {"target": (1, 3, 64, 64), "source": (1, 512)}


@dataclass
class FakeParserError:
    text: str
    index: int
    name: str = ""

    def desc(self) -> str:
        return self.text

    def node(self) -> int:
        return self.index

    def node_name(self) -> str:
        return self.name

    def node_operator(self) -> str:
        return "InstanceNormalization" if self.name else ""


def test_parser_errors_are_all_listed() -> None:
    text = trt_export.format_parser_errors([
        FakeParserError("unsupported attribute", 3, "/in"),
        FakeParserError("weights missing", 7),
    ])
    assert "1. node 3 (/in, InstanceNormalization): unsupported attribute" in text
    assert "2. node 7: weights missing" in text


# --- the build flow on a fake tensorrt module ----------------------------------------------


def _layers_for(path: Path) -> list[tuple[str, str, str]]:
    """What the ONNX parser would make: one layer per node, named after it, output named
    after the node's output tensor."""
    model = onnx.load(str(path))
    kinds = {"InstanceNormalization": "NORMALIZATION", "Conv": "CONVOLUTION",
             "Mul": "ELEMENTWISE", "Add": "ELEMENTWISE"}
    return [(n.name, kinds[n.op_type], n.output[0]) for n in model.graph.node
            if n.op_type in kinds]


def test_a_module_without_strong_typing_sets_fp16_and_pins_norms(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    rec = Recorder()
    layers = _layers_for(generator_onnx)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=layers, rec=rec, strongly_typed=False))
    cache = tmp_path / "timing.cache"
    out = trt_export.build_engine(generator_onnx, tmp_path / "e.engine", precision="fp16",
                                  timing_cache=cache, progress=True)
    assert out.read_bytes().startswith(b'{"magic": "fake-trt"')
    assert rec.network_flags == [0]
    assert rec.builder_flags == ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    norms = {n for n, t, _ in layers if t == "NORMALIZATION"}
    expected = fp16.fp32_node_names(onnx.load(str(generator_onnx)))
    assert norms <= set(rec.pinned) and set(rec.pinned) == expected
    assert all(v == {"precision": "float32", "output0": "float32"} for v in rec.pinned.values())
    # the original FP32 graph is parsed; TensorRT decides FP16 per layer
    assert all(i.data_type == TensorProto.FLOAT for i in rec.parsed[0].graph.initializer
               if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16))
    saved = cache.read_bytes()
    assert rec.cache_blob == b"" and saved.startswith(b"timing:10.13.0.35:Fake GPU")
    assert rec.monitor is not None
    assert rec.profiles[0][1:] == ((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))
    # a second build starts from the saved timing cache
    trt_export.build_engine(generator_onnx, tmp_path / "e2.engine", timing_cache=cache,
                            progress=False)
    assert rec.cache_blob == saved and rec.monitor is None


def test_tensorrt10_build_uses_no_deprecated_api(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Issue 22 row 10: on TensorRT 10.13 the FP16 build is strongly typed from the FP16
    graph: no BuilderFlag.FP16, no layer precision (the double warns on each, as 10.12+)."""
    import warnings

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=_layers_for(generator_onnx), rec=rec))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        trt_export.build_engine(generator_onnx, tmp_path / "e.engine", precision="fp16",
                                progress=False)
        trt_export.build_engine(generator_onnx, tmp_path / "f.engine", precision="fp32",
                                progress=False)
    assert rec.deprecated == [] and rec.builder_flags == [] and rec.pinned == {}
    assert rec.network_flags == [1 << 1, 1 << 1] and rec.build_errors == []
    assert any(n.op_type == "Cast" for n in rec.parsed[0].graph.node)  # the FP16 graph


def test_tensorrt11_build_is_strongly_typed_from_the_fp16_graph(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    trt_export.build_engine(generator_onnx, tmp_path / "e.engine", precision="fp16",
                            max_batch=3, progress=False)
    assert rec.network_flags == [1 << 0]  # 1 << int(STRONGLY_TYPED): 0 in TensorRT 11
    assert rec.builder_flags == [] and rec.pinned == {}
    parsed = rec.parsed[0]
    precisions = fp16.node_precisions(parsed)
    assert any(p == TensorProto.FLOAT16 for p in precisions.values())
    norms = [n.name for n in parsed.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(precisions[n] == TensorProto.FLOAT for n in norms)
    assert [p[0] for p in rec.profiles] == ["target", "source"]
    assert rec.profiles[0][1:] == ((1, 3, 64, 64), (1, 3, 64, 64), (3, 3, 64, 64))


def test_parse_failure_lists_every_error(monkeypatch: pytest.MonkeyPatch,
                                         generator_onnx: Path, tmp_path: Path) -> None:
    rec = Recorder()
    errors = [FakeParserError("first problem", 1, "/a"), FakeParserError("second problem", 2)]
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=[], rec=rec, parse_errors=errors))
    with pytest.raises(trt_export.EngineBuildError) as info:
        trt_export.build_engine(generator_onnx, tmp_path / "e.engine", progress=False)
    assert "2 error(s)" in str(info.value)
    assert "first problem" in str(info.value) and "second problem" in str(info.value)
    assert not (tmp_path / "e.engine").exists() and rec.builds == 0


def test_ensure_engine_caches_and_rebuilds_on_key_change(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=_layers_for(generator_onnx), rec=rec))
    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo("Fake GPU", (8, 9)))
    first = trt_export.ensure_engine(generator_onnx, tmp_path, progress=False)
    again = trt_export.ensure_engine(generator_onnx, tmp_path, progress=False)
    assert first == again and rec.builds == 1
    assert first.parent == tmp_path and first.name.startswith("tiny-fp16-")
    other = trt_export.ensure_engine(generator_onnx, tmp_path, precision="fp32", progress=False)
    assert other != first and rec.builds == 2
    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo("Another GPU", (8, 6)))
    assert trt_export.ensure_engine(generator_onnx, tmp_path, progress=False) != first
    assert rec.builds == 3
    assert len(list(tmp_path.glob("timing-*.cache"))) == 2  # one per GPU
    # the batch profile is part of the key
    wider = trt_export.ensure_engine(generator_onnx, tmp_path, max_batch=8, progress=False)
    assert wider != first and rec.builds == 4


def test_a_changed_engine_file_is_rebuilt(monkeypatch: pytest.MonkeyPatch,
                                         generator_onnx: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15: a derived file carries the sha256 of its source and of itself; a cached
    engine whose bytes changed (same name, same key) is rebuilt, with a log line."""
    from engines import fileio
    from engines.derived import read_stamp

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=_layers_for(generator_onnx), rec=rec))
    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo("Fake GPU", (8, 9)))
    first = trt_export.ensure_engine(generator_onnx, tmp_path, progress=False)
    stamp = read_stamp(first)
    assert stamp is not None and stamp["source_sha256"] == fileio.sha256_file(generator_onnx)
    with open(first, "r+b") as handle:
        handle.write(b"garbage!")
    with caplog.at_level("WARNING", logger="export.tensorrt"):
        again = trt_export.ensure_engine(generator_onnx, tmp_path, progress=False)
    assert again == first and rec.builds == 2
    assert "changed since it was built" in caplog.text


def test_a_timing_cache_from_another_gpu_is_replaced_not_fatal(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Defect 5: set_timing_cache returns False for a foreign cache; the build must not
    then die on get_timing_cache() being None after minutes of work."""
    rec = Recorder(gpu="NVIDIA RTX 4090")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=_layers_for(generator_onnx), rec=rec))
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"timing:10.13.0.35:NVIDIA RTX 3060:old entries")  # a copied folder
    out = trt_export.build_engine(generator_onnx, tmp_path / "e.engine", timing_cache=cache,
                                  progress=False)
    assert out.exists() and rec.builds == 1
    assert cache.read_bytes().startswith(b"timing:10.13.0.35:NVIDIA RTX 4090")


def test_a_builder_that_cannot_initialise_cuda_is_unavailable(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Defect 4 (build side): trt.Builder raises TypeError when CUDA init fails."""
    rec = Recorder(init_fails=True)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=True, layers=_layers_for(generator_onnx), rec=rec))
    with pytest.raises(EngineUnavailable, match="could not initialise CUDA") as info:
        trt_export.build_engine(generator_onnx, tmp_path / "e.engine", progress=False)
    assert "nullptr" in info.value.reason and "driver" in info.value.hint
    assert not (tmp_path / "e.engine").exists()


# --- on this machine -------------------------------------------------------------------------


def test_without_tensorrt_building_is_unavailable(generator_onnx: Path, tmp_path: Path) -> None:
    from engines.tensorrt import unavailable_reason

    if unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present")
    with pytest.raises(EngineUnavailable) as info:
        trt_export.ensure_engine(generator_onnx, tmp_path)
    assert "pypi.nvidia.com" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_why_it_cannot_build(generator_onnx: Path, tmp_path: Path) -> None:
    from engines.tensorrt import unavailable_reason

    if unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present")
    result = subprocess.run(
        [sys.executable, "main.py", "--models-dir", str(tmp_path), "export", "tensorrt",
         "--model", "simswap-224", "--onnx", str(generator_onnx)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "swapcam: error: tensorrt:" in result.stderr
    assert "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12" in result.stderr


def test_cli_builds_into_the_models_engine_cache(monkeypatch: pytest.MonkeyPatch,
                                                 generator_onnx: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from engines import tensorrt as trt_engine
    from export import tensorrt_cli

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    monkeypatch.setattr(trt_engine, "unavailable_reason", lambda: None)
    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo("Fake GPU", (9, 0)))
    parser = argparse.ArgumentParser()
    tensorrt_cli.configure_parser(parser)
    args = parser.parse_args(["--model", "simswap-224", "--onnx", str(generator_onnx),
                              "--no-progress"])
    args.models_dir = tmp_path
    assert tensorrt_cli.run(args) == 0
    engines = list((tmp_path / "engines").glob("tiny-fp16-*.engine"))
    out = capsys.readouterr().out
    assert len(engines) == 1 and str(engines[0]) in out
    # defect 6: the FP32 fallback is built at export, never later in a live loop
    fallback = list((tmp_path / "engines").glob("tiny-fp32-*.engine"))
    assert len(fallback) == 1 and str(fallback[0]) in out and rec.builds == 2
    # the default profile: batch 1..8, tuned for one face
    assert rec.profiles[0][1:] == ((1, 3, 64, 64), (1, 3, 64, 64), (8, 3, 64, 64))
    args.force = True
    assert tensorrt_cli.run(args) == 0 and rec.builds == 4  # --force rebuilt both


# --- issue 22: build rows --------------------------------------------------------------------


def _gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_export, "current_gpu",
                        lambda: trt_export.GpuInfo("Fake GPU", (8, 9)))


def test_row2_one_build_at_a_time_and_one_build_per_engine(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Row 2: the same ONNX opened twice at once is built once; two different ones are
    built one after the other (the file lock ``export tensorrt`` and the app share)."""
    import threading

    rec = Recorder(build_seconds=0.3)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    _gpu(monkeypatch)
    model = onnx.load(str(generator_onnx))
    model.doc_string = "another file (another hash), the same graph"
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    results: list[Any] = []

    def open_one(path: Path, precision: str) -> None:
        try:
            results.append(trt_export.ensure_engine(path, tmp_path / "engines",
                                                    precision=precision, progress=False))
        except BaseException as exc:
            results.append(exc)

    jobs = [(generator_onnx, "fp16"), (generator_onnx, "fp16"), (other, "fp32")]
    threads = [threading.Thread(target=open_one, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, Path) for r in results), results
    assert rec.builds == 2 and rec.most_builds_at_once == 1
    assert (tmp_path / "engines" / "build.lock").exists()


def test_row6_an_fp16_conversion_error_is_an_engine_error(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Row 6: ValueError (or an onnx error) from the FP16 conversion is an EngineError, so
    the registry skips TensorRT instead of the session crashing."""
    from engines.base import EngineError
    from export import fp16

    def broken(model: Any, mode: str = "mixed") -> Any:
        raise ValueError("Concat: input ranks differ")

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    monkeypatch.setattr(fp16, "convert_to_fp16", broken)
    with pytest.raises(EngineError, match=r"FP16 graph.*input ranks differ"):
        trt_export.build_engine(generator_onnx, tmp_path / "e.engine", progress=False)
    assert rec.builds == 0


def test_row9_a_damaged_timing_cache_is_replaced(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Row 9: create_timing_cache returns None for a damaged file; the build goes on with a
    fresh cache and writes it."""
    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"\x00\x13half-written")
    with caplog.at_level("WARNING", logger="export.tensorrt"):
        out = trt_export.build_engine(generator_onnx, tmp_path / "e.engine",
                                      timing_cache=cache, progress=False)
    assert out.exists() and "is damaged" in caplog.text
    assert cache.read_bytes().startswith(b"timing:11.1.0.7:Fake GPU")


def test_row11_the_app_finds_the_engine_export_built_with_another_profile(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    """Row 11: ``export tensorrt --max-batch 4 --opt-batch 2`` is the profile the live app
    then looks up (no second build)."""
    import argparse

    from engines import tensorrt as trt_engine
    from engines.registry import tensorrt_builder
    from export import tensorrt_cli

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    monkeypatch.setattr(trt_engine, "unavailable_reason", lambda: None)
    _gpu(monkeypatch)
    parser = argparse.ArgumentParser()
    tensorrt_cli.configure_parser(parser)
    args = parser.parse_args(["--model", "simswap-224", "--onnx", str(generator_onnx),
                              "--no-progress", "--max-batch", "4", "--opt-batch", "2"])
    args.models_dir = tmp_path
    assert tensorrt_cli.run(args) == 0 and rec.builds == 2
    build = tensorrt_builder(generator_onnx, tmp_path / "engines", trt_engine.MAX_BATCH,
                             trt_engine.OPT_BATCH)
    built = build("fp16")
    assert rec.builds == 2 and built.name.startswith("tiny-fp16-")
    assert rec.profiles[0][1:] == ((1, 3, 64, 64), (2, 3, 64, 64), (4, 3, 64, 64))
    assert trt_export.batch_choice(tmp_path / "engines", generator_onnx) == (4, 2)


def test_row12_the_onnx_file_is_hashed_once(
        monkeypatch: pytest.MonkeyPatch, generator_onnx: Path, tmp_path: Path) -> None:
    from engines import fileio

    rec = Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(
        fp16_flag=False, layers=_layers_for(generator_onnx), rec=rec))
    _gpu(monkeypatch)
    hashed: list[Path] = []

    def counting(path: Path) -> str:
        hashed.append(path)
        return fileio.sha256_file(path)

    monkeypatch.setattr(trt_export, "sha256_file", counting)
    trt_export.ensure_engine(generator_onnx, tmp_path, progress=False)
    assert hashed == [generator_onnx]
