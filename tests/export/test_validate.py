"""export.validate through engines.models.import_model: a candidate is loaded the way it
will be used before it replaces anything (issue 15 item 1). Real models of the exact
architectures with seeded random weights; the attacks are real files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from engines import models
from engines.base import ModelFileError
from export.arcface import UnsafePickleError
from export.random_models import (
    populate_models_dir,
    write_inswapper_like_onnx,
    write_parsing_checkpoint,
    write_simswap_checkpoint,
    write_w600k_like_onnx,
)
from export.validate import VALIDATORS, validate_model
from tests.engines import tiny_onnx_bytes


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    return populate_models_dir(folder, names=("simswap-224", "arcface-simswap",
                                              "inswapper-128"), seed=3)


def _snapshot(models_dir: Path, name: str) -> tuple[bytes, str]:
    path = models.model_path(models_dir, name)
    return path.read_bytes()[:4096] + path.stat().st_size.to_bytes(8, "little"), \
        models.recorded_sha256(models_dir, name)


def _staging_clean(models_dir: Path) -> bool:
    staging = models_dir / models.STAGING_DIR
    return not staging.exists() or not any(staging.iterdir())


# -- each rule of export/validate.py, straight through validate_model (fast: no fixture) --


def _onnx_with_inputs(path: Path, *shapes: tuple[int, ...], op: str = "Identity") -> Path:
    """A graph whose inputs have ``shapes`` (batch first); each input goes through ``op``."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(f"in{i}", TensorProto.FLOAT, list(shape))
              for i, shape in enumerate(shapes)]
    outputs = [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, None)
               for i in range(len(shapes))]
    nodes = [helper.make_node(op, [f"in{i}"], [f"out{i}"]) for i in range(len(shapes))]
    graph = helper.make_graph(nodes, "candidate", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_bytes_that_are_no_onnx_are_refused(tmp_path: Path) -> None:
    page = tmp_path / "inswapper_128.onnx"
    page.write_bytes(b"<!DOCTYPE html><title>quota exceeded</title>" * 20)
    with pytest.raises(ModelFileError, match="not a valid ONNX file for inswapper-128"):
        validate_model("inswapper-128", page)


def test_an_onnx_missing_one_of_the_inputs_is_refused(tmp_path: Path) -> None:
    """inswapper takes the target crop and the identity vector: the crop alone is not it."""
    one = _onnx_with_inputs(tmp_path / "one.onnx", (1, 3, 128, 128))
    with pytest.raises(ModelFileError, match=r"not a inswapper-128 model \(inputs"):
        validate_model("inswapper-128", one)


def test_an_onnx_input_of_another_size_is_refused(tmp_path: Path) -> None:
    crop128 = _onnx_with_inputs(tmp_path / "crop128.onnx", (1, 3, 128, 128))
    with pytest.raises(ModelFileError, match=r"not a arcface-w600k model \(inputs"):
        validate_model("arcface-w600k", crop128)


def test_an_onnx_input_of_another_rank_is_refused(tmp_path: Path) -> None:
    flat = _onnx_with_inputs(tmp_path / "flat.onnx", (1, 3, 112))
    with pytest.raises(ModelFileError, match=r"not a arcface-w600k model \(inputs"):
        validate_model("arcface-w600k", flat)


def test_dynamic_sizes_pass_the_input_check(tmp_path: Path) -> None:
    """SCRFD takes any image size: a graph with the right rank and channels passes."""
    scrfd = _onnx_with_inputs(tmp_path / "scrfd.onnx", (1, 3, 640, 640))
    validate_model("scrfd-10g", scrfd)


def test_an_onnx_runtime_cannot_open_is_refused(tmp_path: Path) -> None:
    """Right inputs, but an operator ONNX Runtime does not have."""
    odd = _onnx_with_inputs(tmp_path / "odd.onnx", (1, 3, 112, 112), op="NoSuchOperator")
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load it as arcface-w600k"):
        validate_model("arcface-w600k", odd)


def test_a_checkpoint_with_other_keys_is_refused_as_the_face_parser(tmp_path: Path) -> None:
    other = tmp_path / "79999_iter.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(ModelFileError, match=r"79999_iter\.pth"):
        validate_model("face-parsing", other)


def test_an_arcface_with_other_shapes_is_refused(tmp_path: Path) -> None:
    """A module the restricted unpickler accepts, with one layer of another size: the
    strict load refuses it."""
    from export.arcface import ArcFaceResNet
    from export.random_models import pickle_official_arcface

    model = ArcFaceResNet()
    model.fc = torch.nn.Linear(8, 512)
    path = pickle_official_arcface(model, tmp_path / "arcface_checkpoint.tar")
    with pytest.raises(ModelFileError, match=r"fc\.weight"):
        validate_model("arcface-simswap", path)


def test_a_tflite_that_does_not_convert_is_refused_as_face_mesh(tmp_path: Path) -> None:
    fake = tmp_path / "face_landmark.tflite"
    fake.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(200))
    with pytest.raises(ModelFileError, match="not a usable FaceMesh model"):
        validate_model("face-mesh", fake)


def test_a_loader_error_becomes_a_model_file_error(tmp_path: Path) -> None:
    """A loader that lets an OSError through (ArcFace's TorchScript check opens the file
    itself): the caller still gets a ModelFileError naming the file and the model."""
    with pytest.raises(ModelFileError, match="does not load as arcface-simswap"):
        validate_model("arcface-simswap", tmp_path / "gone.tar")


def test_every_model_in_the_table_has_a_validator() -> None:
    assert set(models.MODELS) <= set(VALIDATORS)


def test_checkpoint_of_other_shapes_does_not_replace_the_generator(
        installed: Path, tmp_path: Path) -> None:
    """Before: imported, recorded, listed "verified"; the next swap failed."""
    state = torch.load(write_simswap_checkpoint(tmp_path / "g.pth", 224, seed=1),
                       weights_only=True)
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 2)
    bad = tmp_path / "latest_net_G.pth"
    torch.save(state, bad)
    before = _snapshot(installed, "simswap-224")
    with pytest.raises(ModelFileError, match=r"installed one is kept.*(size mismatch|shape)"):
        models.import_model(bad, installed, "simswap-224")
    assert _snapshot(installed, "simswap-224") == before
    assert models.verify_model(installed, "simswap-224")
    assert _staging_clean(installed)


def test_another_models_checkpoint_is_refused_as_simswap(installed: Path,
                                                         tmp_path: Path) -> None:
    parser = write_parsing_checkpoint(tmp_path / "latest_net_G.pth", seed=0)
    before = _snapshot(installed, "simswap-224")
    with pytest.raises(ModelFileError, match="simswap-224"):
        models.import_model(parser, installed, "simswap-224")
    assert _snapshot(installed, "simswap-224") == before


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_as_arcface_is_refused_and_never_runs(installed: Path,
                                                               tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "arcface_checkpoint.tar"
    bad.write_bytes(pickle.dumps({"model": _Payload(marker)}, protocol=2))
    before = _snapshot(installed, "arcface-simswap")
    with pytest.raises(UnsafePickleError):
        models.import_model(bad, installed, "arcface-simswap")
    assert not marker.exists()
    assert _snapshot(installed, "arcface-simswap") == before
    assert _staging_clean(installed)


def test_onnx_with_other_inputs_is_refused_as_inswapper(installed: Path,
                                                       tmp_path: Path) -> None:
    wrong = tmp_path / "inswapper_128.onnx"
    wrong.write_bytes(tiny_onnx_bytes(3.0))
    before = _snapshot(installed, "inswapper-128")
    with pytest.raises(ModelFileError, match="not a inswapper-128 model"):
        models.import_model(wrong, installed)
    assert _snapshot(installed, "inswapper-128") == before
    w600k = write_w600k_like_onnx(tmp_path / "w.onnx")
    with pytest.raises(ModelFileError, match="inputs"):
        models.import_model(w600k, installed, "inswapper-128")


def test_a_good_candidate_replaces_the_installed_file(installed: Path,
                                                      tmp_path: Path) -> None:
    new = write_inswapper_like_onnx(tmp_path / "inswapper_128.onnx", seed=8)
    assert models.import_model(new, installed) == ["inswapper-128"]
    assert models.model_path(installed, "inswapper-128").read_bytes() == new.read_bytes()
    assert models.verify_model(installed, "inswapper-128")


def test_validating_arcface_writes_nothing_beside_the_candidate(installed: Path) -> None:
    source = models.model_path(installed, "arcface-simswap")
    before = sorted(p.name for p in source.parent.iterdir())
    validate_model("arcface-simswap", source)
    assert sorted(p.name for p in source.parent.iterdir()) == before


def test_unknown_model_has_no_validator(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no validator"):
        validate_model("no-such-model", tmp_path / "x")
