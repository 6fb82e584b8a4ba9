"""The BiSeNet face parser: official keys, strict loading, and numbers equal to SimSwap's own
``parsing_model`` (golden file from tests/golden/make_parsing_golden.py) for both the torch
module and its exported ONNX; the export CLI, the models folder, ORT CPU and FP16.

One real export (``ensure_onnx`` from an imported ``79999_iter.pth``) in a module fixture,
plus one refused export (NaN weights).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from engines.models import model_status
from engines.registry import open_engine
from export import fp16
from export import onnx as export_onnx_module
from export.onnx import ExportMismatch, ExportReport, ensure_onnx, onnx_path_for
from export.parsing import (
    INPUTS,
    OUTPUTS,
    BiSeNet,
    CheckpointError,
    load_parser,
    normalise,
)
from export.random_models import make_parser, populate_models_dir
from tests.golden.make_parsing_golden import (
    GOLDEN,
    SEED,
    batchnorm_statistics,
    digest,
    face_crop,
    golden_inputs,
    seeded_digest,
    summarise,
)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def inputs(golden: dict[str, np.ndarray]) -> np.ndarray:
    x = golden_inputs()
    assert digest(x) == str(golden["input_sha256"]), "the golden input changed"
    return x


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    populate_models_dir(folder, names=("face-parsing",), seed=SEED)
    return folder


@pytest.fixture(scope="module")
def weights(models_dir: Path) -> Path:
    return models_dir / "face-parsing" / "79999_iter.pth"


@pytest.fixture(scope="module")
def exported(models_dir: Path) -> Path:
    """The app's lazy export: ``ensure_onnx`` writes ``face-parsing/face-parsing.onnx``."""
    path = ensure_onnx(models_dir, "face-parsing")
    assert path == onnx_path_for(models_dir, "face-parsing")
    return path


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _assert_matches_golden(logits: np.ndarray, golden: dict[str, np.ndarray]) -> None:
    assert logits.shape == tuple(golden["shape"])
    ours = summarise(logits)
    for key in ("grid", "row", "channel_mean"):
        worst = float(np.abs(ours[key] - golden[key]).max())
        assert worst <= TOLERANCE, (key, worst)
    # argmax may flip only where two classes tie within rounding: a handful of pixels
    flipped = int(np.abs(ours["class_hist"] - golden["class_hist"]).sum())
    assert flipped <= 20, flipped


# -- architecture and weights ------------------------------------------------------------

def test_keys_and_shapes_are_the_official_ones(golden: dict[str, np.ndarray]) -> None:
    ours = [f"{k}:{'x'.join(map(str, v.shape))}" for k, v in BiSeNet().state_dict().items()]
    assert ours == list(golden["official_keys"])
    assert len(ours) == 191


def test_seeded_writer_reproduces_the_golden_weights(weights: Path,
                                                     golden: dict[str, np.ndarray]) -> None:
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    # weights and BatchNorm affine terms bit for bit; the calibrated statistics to float noise
    assert seeded_digest(state) == str(golden["seeded_weights_sha256"])
    np.testing.assert_allclose(batchnorm_statistics(state), golden["batchnorm_statistics"],
                               rtol=1e-4, atol=1e-6)
    other = make_parser(SEED + 1).state_dict()
    assert seeded_digest(other) != str(golden["seeded_weights_sha256"])
    assert not np.allclose(batchnorm_statistics(other), golden["batchnorm_statistics"],
                           rtol=1e-4, atol=1e-6)


def test_torch_module_equals_the_official_bisenet(weights: Path, inputs: np.ndarray,
                                                  golden: dict[str, np.ndarray]) -> None:
    model = load_parser(weights)
    assert not model.training
    with torch.inference_mode():
        logits = model(torch.from_numpy(inputs)).numpy()
    _assert_matches_golden(logits, golden)
    # the face crop really parses into several regions (not one class everywhere)
    assert int((golden["class_hist"][0] > 1000).sum()) >= 5


def test_normalise_is_imagenet_mean_std() -> None:
    crop = face_crop()
    x = normalise(crop)
    assert x.shape == (1, 3, 512, 512) and x.dtype == np.float32
    red = (crop[..., 0].astype(np.float32) / 255.0 - 0.485) / 0.229
    np.testing.assert_allclose(x[0, 0], red, atol=1e-6)
    np.testing.assert_allclose(normalise(crop.astype(np.float32) / 255.0), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[H,W,3\]"):
        normalise(crop[..., :2])


# -- strict loading ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def state(weights: Path) -> dict[str, torch.Tensor]:
    loaded = torch.load(weights, map_location="cpu", weights_only=True)
    assert isinstance(loaded, dict)
    return loaded


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_missing_unexpected_and_misshapen_keys_are_named(
        tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    broken = dict(state)
    del broken["cp.arm16.conv_atten.weight"]
    broken["cp.sp.conv1.conv.weight"] = torch.zeros(1)
    broken["conv_out.conv_out.weight"] = torch.zeros(18, 256, 1, 1)
    with pytest.raises(CheckpointError) as info:
        load_parser(_save(tmp_path / "79999_iter.pth", broken))
    message = str(info.value)
    assert "missing keys: cp.arm16.conv_atten.weight" in message
    assert "unexpected keys: cp.sp.conv1.conv.weight" in message
    assert "conv_out.conv_out.weight (expected (19, 256, 1, 1), got (18, 256, 1, 1))" in message


def test_a_generator_checkpoint_is_refused_with_its_keys(tmp_path: Path) -> None:
    from export.random_models import write_simswap_checkpoint

    wrong = write_simswap_checkpoint(tmp_path / "latest_net_G.pth", 224)
    with pytest.raises(CheckpointError, match="holds none of the face parser's keys "
                       r"\(first keys: BottleNeck.0.conv1.1.bias, .*79999_iter.pth"):
        load_parser(wrong)


def test_import_refuses_another_model_named_79999_iter(tmp_path: Path) -> None:
    from engines.models import import_model
    from export.random_models import write_simswap_checkpoint

    impostor = write_simswap_checkpoint(tmp_path / "other" / "79999_iter.pth", 224)
    folder = tmp_path / "models"
    with pytest.raises(CheckpointError, match="face parser's keys"):
        import_model(impostor, folder)
    assert model_status(folder, "face-parsing") == "missing"


def test_dataparallel_prefix_and_absent_step_counters_are_accepted(
        tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    renamed = {f"module.{k}": v for k, v in state.items()
               if not k.endswith(".num_batches_tracked")}
    model = load_parser(_save(tmp_path / "79999_iter.pth", renamed))
    key = "cp.resnet.layer3.1.conv2.weight"
    assert torch.equal(model.state_dict()[key], state[key])


def test_non_state_dicts_and_pickled_code_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="expected a BiSeNet state_dict"):
        load_parser(_save(tmp_path / "list.pth", [torch.zeros(1)]))
    with pytest.raises(CheckpointError, match="no such file"):
        load_parser(tmp_path / "absent.pth")

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[()]]:
            import os

            return (os.getpid, ())

    payload = tmp_path / "payload.pth"
    payload.write_bytes(pickle.dumps(Payload(), protocol=2))
    assert pickle.loads(payload.read_bytes()) > 0  # control: plain pickle runs the call
    with pytest.raises(CheckpointError, match="not a readable torch state_dict"):
        load_parser(payload)


# -- export, ONNX Runtime, models folder -------------------------------------------------

def test_onnx_interface_is_input_and_logits_with_dynamic_batch(exported: Path) -> None:
    graph = onnx.load(str(exported))
    assert [(i.name, _dims(i)) for i in graph.graph.input] == [
        ("input", ["batch", 3, 512, 512])]
    first = graph.graph.output[0]
    assert (first.name, _dims(first)) == ("logits", ["batch", 19, 512, 512])
    for value in [*graph.graph.input, *graph.graph.output]:
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
    assert INPUTS[0].name == "input" and OUTPUTS[0].name == "logits"
    assert not list(exported.parent.glob(".*.tmp"))


def test_onnx_equals_the_official_bisenet_on_a_batch(exported: Path, inputs: np.ndarray,
                                                     golden: dict[str, np.ndarray]) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": inputs})[0]
    _assert_matches_golden(logits, golden)
    single = session.run(["logits"], {"input": inputs[1:]})[0]
    np.testing.assert_allclose(single, logits[1:], atol=1e-5)


def test_models_folder_import_ensure_onnx_and_ort_cpu_engine(
        models_dir: Path, exported: Path, golden: dict[str, np.ndarray],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_status(models_dir, "face-parsing") == "verified"

    def refuse(*args: object, **kwargs: object) -> ExportReport:
        raise AssertionError("exported again")

    monkeypatch.setattr(export_onnx_module, "export_onnx", refuse)
    assert ensure_onnx(models_dir, "face-parsing") == exported  # stamped: reused
    engine = open_engine(exported, "onnxruntime-cpu")
    try:
        assert engine.backend == "onnxruntime-cpu"
        assert [s.name for s in engine.inputs] == ["input"]
        assert engine.outputs[0].name == "logits"
        face = normalise(face_crop())
        logits = engine.run({"input": face})["logits"]
    finally:
        engine.close()
    assert logits.shape == (1, 19, 512, 512)
    worst = float(np.abs(logits[0][:, 8::32, 8::32] - golden["grid"][0]).max())
    assert worst <= TOLERANCE


def test_export_check_fails_on_nan(exported: Path, weights: Path) -> None:
    model = load_parser(weights)
    x = {"input": torch.from_numpy(golden_inputs()[:1])}
    check = export_onnx_module._max_abs_diff
    assert check(exported, model, x, "logits") <= TOLERANCE
    with torch.no_grad():
        model.conv_out.conv_out.weight[3, 0] = float("nan")  # torch side NaN only
    with pytest.raises(ExportMismatch, match=r"torch output holds .* NaN/inf"):
        check(exported, model, x, "logits")
    poisoned = {"input": x["input"].clone()}
    poisoned["input"][0, 0, 100, 100] = float("nan")  # NaN on both sides
    with pytest.raises(ExportMismatch, match=r"output holds .* NaN/inf"):
        check(exported, load_parser(weights), poisoned, "logits")


def test_nan_weights_refuse_the_export(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    from export.onnx import export_onnx

    poisoned = dict(state)
    poisoned["ffm.convblk.bn.weight"] = state["ffm.convblk.bn.weight"].clone()
    poisoned["ffm.convblk.bn.weight"][7] = float("nan")
    weights = _save(tmp_path / "79999_iter.pth", poisoned)
    output = tmp_path / "parsing.onnx"
    with pytest.raises(ExportMismatch, match=r"output holds .* NaN/inf values"):
        export_onnx("face-parsing", weights, output, progress=False)
    assert not output.exists() and not list(tmp_path.glob(".*.tmp"))


# -- FP16 ----------------------------------------------------------------------------------

def test_fp16_graph_keeps_pools_fp32_and_parses_a_real_face_like_fp32(exported: Path) -> None:
    model32 = onnx.load(str(exported))
    mixed = fp16.convert_to_fp16(model32, "mixed")
    precisions = fp16.node_precisions(mixed)
    pools = [n.name for n in mixed.graph.node if n.op_type == "GlobalAveragePool"]
    assert len(pools) == 4  # two attention refinements, the context branch, the fusion gate
    assert all(precisions[name] == TensorProto.FLOAT for name in pools)
    convs = [n.name for n in mixed.graph.node if n.op_type == "Conv"]
    assert convs and all(precisions[name] == TensorProto.FLOAT16 for name in convs)
    assert [o.name for o in mixed.graph.output] == ["logits"]
    feeds = {"input": normalise(face_crop())}
    reference = fp16.run_onnx(model32, feeds)
    half = fp16.run_onnx(mixed, feeds)
    assert half.dtype == np.float32 and half.shape == reference.shape
    # FP16 rounds each op to 2^-11 relative; through ~20 conv layers on logits of |x| ≲ 5
    # that is a few 1e-2 at most, and the class map (what the mask uses) barely moves.
    error = fp16.max_abs_error(reference, half)
    assert 0.0 < error < 0.05, error
    agreement = float((reference.argmax(1) == half.argmax(1)).mean())
    assert agreement > 0.99, agreement


def test_cli_accepts_the_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from export import onnx_cli

    seen: dict[str, object] = {}

    def fake(model: str, weights: Path, output: Path, **kwargs: object) -> ExportReport:
        seen.update(model=model, weights=weights, output=output)
        return ExportReport(model=model, output=output, export_seconds=4.5,
                            check_seconds=1.0, max_abs_diff=2.4e-5, tolerance=1e-4,
                            opset=17, exporter="torchscript", ops={})

    monkeypatch.setattr(export_onnx_module, "export_onnx", fake)
    parser = argparse.ArgumentParser()
    onnx_cli.configure_parser(parser)
    args = parser.parse_args(["--model", "face-parsing", "--weights", "79999_iter.pth",
                              "--output", str(tmp_path / "parsing.onnx")])
    assert onnx_cli.run(args) == 0
    assert seen == {"model": "face-parsing", "weights": Path("79999_iter.pth"),
                    "output": tmp_path / "parsing.onnx"}
    assert "2.40e-05" in capsys.readouterr().out
