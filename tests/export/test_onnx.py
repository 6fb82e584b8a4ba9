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
from tests.golden import reference as golden

NORM_LEFTOVERS = {"ReduceMean", "Pow", "Sqrt", "Reciprocal", "ReduceSumSquare"}


@pytest.fixture(scope="module")
def export_224(tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    folder = tmp_path_factory.mktemp("onnx224")
    weights = write_simswap_checkpoint(folder / "latest_net_G.pth", 224,
                                       seed=golden.GENERATOR_SEEDS[224])
    return export_onnx("simswap-224", weights, folder / "g224.onnx", progress=False)


@pytest.fixture(scope="module")
def arcface_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    populate_models_dir(folder, names=("arcface-simswap", "arcface-w600k"),
                        seed=golden.ARCFACE_SEED)
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
    # the exporter's own check compares with our torch module; this compares ONNX Runtime
    # with the official code's numbers on a real face
    reference = golden.load_golden(f"simswap_{size}")
    crop = golden.face_crop_rgb(size)
    golden.check_input(reference, crop)
    got = _session(report.output).run(["output"], {
        "target": golden.to_tensor01(crop).numpy(), "source": reference["source"]})[0]
    golden.compare_image_output(reference, got)
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
    weights = write_simswap_checkpoint(tmp_path / "550000_net_G.pth", 512,
                                       seed=golden.GENERATOR_SEEDS[512])
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
    # ORT and torch from the same checkpoint, on a batch of two real faces, against the
    # official code's numbers
    weights = arcface_models_dir / "arcface-simswap" / "arcface_checkpoint.tar"
    model = load_arcface(weights)
    reference = golden.load_golden("arcface_simswap")
    golden.check_weights(reference, model.state_dict())
    crops = golden.arcface_crops_rgb()
    golden.check_input(reference, crops)
    x = golden.imagenet_112(golden.to_tensor01(crops))
    got = _session(path).run(["output"], {"input": x.numpy()})[0]
    with torch.inference_mode():
        expected = model(x).numpy()
    assert got.shape == (2, 512)
    golden.compare_vectors(reference, "raw", got)
    golden.compare_vectors(reference, "raw", expected)

    # up to date: no second export
    def refuse(*args: object, **kwargs: object) -> ExportReport:
        raise AssertionError("exported again")

    monkeypatch.setattr(export_onnx_module, "export_onnx", refuse)
    assert ensure_onnx(arcface_models_dir, "arcface-simswap") == path
    # ONNX-native models are returned as installed
    native = ensure_onnx(arcface_models_dir, "arcface-w600k")
    assert native == arcface_models_dir / "arcface-w600k" / "w600k_r50.onnx"


def _count_exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the export with one that records the call and writes a fresh copy of the
    real exported bytes (so the stamp that follows is genuine)."""
    calls: list[str] = []
    real = export_onnx_module.export_onnx

    def counting(model: str, weights: Path, output: Path, **kwargs: object) -> ExportReport:
        calls.append(model)
        return real(model, weights, output, progress=False,
                    on_stage=kwargs.get("on_stage"))  # type: ignore[arg-type]

    monkeypatch.setattr(export_onnx_module, "export_onnx", counting)
    return calls


def test_ensure_onnx_rebuilds_an_onnx_whose_bytes_changed(
        arcface_models_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15 item 2: 64 KB of garbage inside the exported ONNX (file time kept) used
    to run silently; its stamp no longer matches, so it is rebuilt, with a log line."""
    import os

    onnx_file = ensure_onnx(arcface_models_dir, "arcface-simswap")
    good = onnx_file.read_bytes()
    st = onnx_file.stat()
    with open(onnx_file, "r+b") as handle:
        handle.seek(len(good) // 2)
        handle.write(np.random.default_rng(1).bytes(64 * 1024))
    os.utime(onnx_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    calls = _count_exports(monkeypatch)
    stages: list[tuple[int, int, str]] = []
    with caplog.at_level("WARNING", logger="export.onnx"):
        assert ensure_onnx(arcface_models_dir, "arcface-simswap",
                           on_stage=lambda *stage: stages.append(stage)) == onnx_file
    assert calls == ["arcface-simswap"]
    # the window's progress bar: every stage, in order, ending at 4 of 4
    assert stages[0][:2] == (0, 4) and stages[-1][:2] == (4, 4)
    assert [done for done, _total, _what in stages] == sorted(done for done, _, _ in stages)
    assert "changed since it was built" in caplog.text
    session_out = _session(onnx_file).run(
        ["output"], {"input": np.zeros((1, 3, 112, 112), np.float32)})[0]
    assert np.isfinite(session_out).all()


def test_ensure_onnx_keeps_the_export_when_the_same_checkpoint_is_reimported(
        tmp_path: Path, arcface_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 item 6: re-importing the same file (new file time) forced a re-export."""
    import shutil

    from engines.models import import_model

    onnx_file = ensure_onnx(arcface_models_dir, "arcface-simswap")
    copy = tmp_path / "arcface_checkpoint.tar"
    shutil.copyfile(arcface_models_dir / "arcface-simswap" / "arcface_checkpoint.tar", copy)
    assert import_model(copy, arcface_models_dir) == ["arcface-simswap"]
    calls = _count_exports(monkeypatch)
    assert ensure_onnx(arcface_models_dir, "arcface-simswap") == onnx_file
    assert calls == []


def test_ensure_onnx_reexports_for_another_checkpoint(
        tmp_path: Path, arcface_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    # a copy of the module's folder with its export done (one export less than building
    # a folder of its own); the copy's export is stamped and up to date
    ensure_onnx(arcface_models_dir, "arcface-simswap")
    models = shutil.copytree(arcface_models_dir, tmp_path / "models")
    first = _count_exports(monkeypatch)
    onnx_file = ensure_onnx(models, "arcface-simswap")
    assert onnx_file == onnx_path_for(models, "arcface-simswap") and first == []
    monkeypatch.undo()
    from engines.models import import_model
    from export.random_models import make_arcface, pickle_official_arcface

    other = pickle_official_arcface(make_arcface(seed=11), tmp_path / "arcface_checkpoint.tar")
    import_model(other, models)
    calls = _count_exports(monkeypatch)
    assert ensure_onnx(models, "arcface-simswap") == onnx_file
    assert calls == ["arcface-simswap"]


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


class _PartlyNaN(torch.nn.Module):
    """Agrees with its export everywhere, but one output value is NaN in both: what
    NaN weights in a checkpoint look like to the check."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.flatten(x, 1)[:, :512]
        first = torch.arange(512).unsqueeze(0) == 0
        return torch.where(first, torch.full_like(y, float("nan")), y)


def test_nan_in_the_output_is_refused_and_nothing_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_onnx_module, "load_torch_model",
                        lambda model, weights: _PartlyNaN())
    output = tmp_path / "arc.onnx"
    with pytest.raises(ExportMismatch, match=r"ONNX Runtime output holds 1 NaN/inf values"):
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
