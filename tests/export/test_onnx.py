"""ONNX export: ONNX Runtime agrees with torch, instance norms are single nodes, batches
are dynamic, a mismatch is refused, ``ensure_onnx`` exports once from the models folder.

Each full-size export (224, 512, ArcFace) runs once, in a module fixture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export import onnx as export_onnx_module
from export.onnx import ExportMismatch, ExportReport, ensure_onnx, export_onnx, onnx_path_for
from export.random_models import populate_models_dir, write_simswap_checkpoint

NORM_LEFTOVERS = {"ReduceMean", "Pow", "Sqrt", "Reciprocal", "ReduceSumSquare"}


@pytest.fixture(scope="module")
def export_224(tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    folder = tmp_path_factory.mktemp("onnx224")
    weights = write_simswap_checkpoint(folder / "latest_net_G.pth", 224, seed=2)
    return export_onnx("simswap-224", weights, folder / "g224.onnx", progress=False)


@pytest.fixture(scope="module")
def arcface_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    populate_models_dir(folder, names=("arcface-simswap", "arcface-w600k"), seed=4)
    return folder


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _check_generator_graph(report: ExportReport, size: int) -> onnx.ModelProto:
    graph = onnx.load(str(report.output))
    ops = [node.op_type for node in graph.graph.node]
    assert ops.count("InstanceNormalization") == 18  # 9 blocks × 2
    assert not NORM_LEFTOVERS & set(ops)
    assert report.ops["InstanceNormalization"] == 18
    assert [(i.name, _dims(i)) for i in graph.graph.input] == [
        ("target", ["batch", 3, size, size]), ("source", ["batch", 512])]
    assert [o.name for o in graph.graph.output] == ["output"]
    assert report.opset >= 17
    assert 0.0 <= report.max_abs_diff <= 1e-4
    return graph


def test_224_export_matches_torch_with_single_instance_norm_nodes(
        export_224: ExportReport) -> None:
    _check_generator_graph(export_224, 224)
    assert export_224.ops["Conv"] == 26
    assert export_224.output.is_file()
    assert not list(export_224.output.parent.glob(".*.tmp"))
    assert export_224.export_seconds > 0


def test_224_batch_of_two_equals_two_single_calls(export_224: ExportReport) -> None:
    session = _session(export_224.output)
    rng = np.random.default_rng(0)
    target = rng.random((2, 3, 224, 224), dtype=np.float32)
    source = rng.normal(size=(2, 512)).astype(np.float32)
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    batch = session.run(["output"], {"target": target, "source": source})[0]
    single = session.run(["output"], {"target": target[1:], "source": source[1:]})[0]
    assert batch.shape == (2, 3, 224, 224)
    np.testing.assert_allclose(batch[1:], single, atol=1e-5)
    assert float(np.abs(batch[0] - batch[1]).max()) > 1e-3


@pytest.mark.slow
def test_512_export_matches_torch(tmp_path: Path) -> None:
    weights = write_simswap_checkpoint(tmp_path / "550000_net_G.pth", 512, seed=1)
    report = export_onnx("simswap-512", weights, tmp_path / "g512.onnx", progress=False)
    _check_generator_graph(report, 512)
    assert report.ops["Conv"] == 28  # 224's 26 plus down0 and up0


def test_ensure_onnx_exports_the_arcface_once(arcface_models_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from export.arcface import load_arcface

    path = ensure_onnx(arcface_models_dir, "arcface-simswap")
    assert path == onnx_path_for(arcface_models_dir, "arcface-simswap")
    assert path == arcface_models_dir / "arcface-simswap" / "arcface-simswap.onnx"
    graph = onnx.load(str(path))
    assert [(i.name, _dims(i)) for i in graph.graph.input] == [("input", ["batch", 3, 112, 112])]
    assert [o.name for o in graph.graph.output] == ["output"]
    # ORT on a batch of 3 vs torch from the same checkpoint
    weights = arcface_models_dir / "arcface-simswap" / "arcface_checkpoint.tar"
    model = load_arcface(weights)
    x = torch.randn(3, 3, 112, 112, generator=torch.Generator().manual_seed(9))
    got = _session(path).run(["output"], {"input": x.numpy()})[0]
    with torch.inference_mode():
        expected = model(x).numpy()
    assert got.shape == (3, 512)
    assert float(np.abs(got - expected).max()) <= 1e-4

    # up to date: no second export
    def refuse(*args: object, **kwargs: object) -> ExportReport:
        raise AssertionError("exported again")

    monkeypatch.setattr(export_onnx_module, "export_onnx", refuse)
    assert ensure_onnx(arcface_models_dir, "arcface-simswap") == path
    # ONNX-native models are returned as installed
    native = ensure_onnx(arcface_models_dir, "arcface-w600k")
    assert native == arcface_models_dir / "arcface-w600k" / "w600k_r50.onnx"


def test_ensure_onnx_re_exports_when_the_checkpoint_is_newer(
        tmp_path: Path, arcface_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_onnx(arcface_models_dir, "arcface-simswap")
    onnx_file = onnx_path_for(arcface_models_dir, "arcface-simswap")
    st = onnx_file.stat()
    import os

    os.utime(onnx_file, ns=(st.st_atime_ns, st.st_mtime_ns - 10**12))  # older than weights
    calls: list[tuple[str, str, Path]] = []

    def fake(model: str, weights: Path, output: Path, **kwargs: object) -> None:
        calls.append((model, weights.name, output))
        os.utime(output)

    monkeypatch.setattr(export_onnx_module, "export_onnx", fake)
    assert ensure_onnx(arcface_models_dir, "arcface-simswap") == onnx_file
    assert calls == [("arcface-simswap", "arcface_checkpoint.tar", onnx_file)]


def test_ensure_onnx_says_how_to_install_a_missing_model(tmp_path: Path) -> None:
    from engines.models import ModelMissing

    with pytest.raises(ModelMissing, match="models download simswap-224"):
        ensure_onnx(tmp_path, "simswap-224")
    assert not (tmp_path / "simswap-224" / "simswap-224.onnx").exists()


class _Drifting(torch.nn.Module):
    """Returns a different result on every Python call: what an exporter that mistranslated
    the model would look like to the check."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.flatten(x, 1)[:, :512] * float(self.calls)


def test_a_mismatch_is_refused_and_nothing_written(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_onnx_module, "load_torch_model", lambda model, weights: _Drifting())
    output = tmp_path / "arc.onnx"
    with pytest.raises(ExportMismatch, match=r"differ by .* expected at most 1e-04"):
        export_onnx("arcface-simswap", tmp_path / "unused.tar", output, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected one of simswap-224, simswap-512"):
        export_onnx("inswapper-128", tmp_path / "x", tmp_path / "y.onnx")


def test_cli_prints_time_and_difference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from export import onnx_cli

    seen: dict[str, object] = {}

    def fake(model: str, weights: Path, output: Path, **kwargs: object) -> ExportReport:
        seen.update(model=model, weights=weights, output=output, **kwargs)
        return ExportReport(model=model, output=output, export_seconds=12.34,
                            check_seconds=1.0, max_abs_diff=3.2e-6, tolerance=1e-4,
                            opset=17, exporter="torchscript", ops={})

    monkeypatch.setattr(export_onnx_module, "export_onnx", fake)
    parser = argparse.ArgumentParser()
    onnx_cli.configure_parser(parser)
    args = parser.parse_args(["--model", "simswap-512", "--weights", "w.pth",
                              "--output", str(tmp_path / "g.onnx")])
    assert onnx_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "12.3 s" in out and "3.20e-06" in out
    assert seen["model"] == "simswap-512" and seen["tolerance"] == 1e-4
