"""Random-weight models in the official formats: interfaces, determinism, models folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from export.random_models import (
    OFFICIAL_MODULE,
    make_generator,
    official_module_names,
    populate_models_dir,
    write_inswapper_like_onnx,
    write_w600k_like_onnx,
)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_inswapper_like_has_the_interface_and_emap_last(tmp_path: Path) -> None:
    path = write_inswapper_like_onnx(tmp_path / "inswapper_128.onnx", seed=1)
    model = onnx.load(str(path))
    last = model.graph.initializer[-1]
    assert last.name == "emap" and numpy_helper.to_array(last).shape == (512, 512)
    session = _session(path)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("target", [1, 3, 128, 128]), ("source", [1, 512])]
    rng = np.random.default_rng(0)
    target = rng.random((1, 3, 128, 128), dtype=np.float32)
    a, b = (rng.normal(size=(1, 512)).astype(np.float32) for _ in range(2))
    out_a = session.run(None, {"target": target, "source": a})[0]
    out_b = session.run(None, {"target": target, "source": b})[0]
    assert out_a.shape == (1, 3, 128, 128)
    assert out_a.min() >= 0.0 and out_a.max() <= 1.0
    assert np.abs(out_a - out_b).max() > 1e-3  # the identity changes the output
    again = write_inswapper_like_onnx(tmp_path / "again.onnx", seed=1)
    assert again.read_bytes() == path.read_bytes()  # seeded


def test_w600k_like_maps_faces_to_distinct_vectors(tmp_path: Path) -> None:
    session = _session(write_w600k_like_onnx(tmp_path / "w600k_r50.onnx"))
    assert session.get_inputs()[0].shape == [1, 3, 112, 112]
    rng = np.random.default_rng(1)
    x, y = (rng.normal(size=(1, 3, 112, 112)).astype(np.float32) for _ in range(2))
    vx = session.run(None, {session.get_inputs()[0].name: x})[0]
    vy = session.run(None, {session.get_inputs()[0].name: y})[0]
    assert vx.shape == (1, 512)
    cosine = float((vx @ vy.T).item() / np.linalg.norm(vx) / np.linalg.norm(vy))
    assert cosine < 0.9


def test_generators_are_seeded_and_exercise_batchnorm() -> None:
    a, b, c = make_generator(224, seed=7), make_generator(224, seed=7), make_generator(224, 8)
    key = "BottleNeck.2.conv1.1.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])
    assert float(a.state_dict()["down2.1.running_mean"].abs().max()) > 0  # not the default 0


def test_official_module_names_are_registered_only_inside() -> None:
    assert OFFICIAL_MODULE not in sys.modules
    had_models = "models" in sys.modules
    with official_module_names() as classes:
        assert sys.modules[OFFICIAL_MODULE].ResNet is classes["ResNet"]
        assert classes["IRBlock"].__module__ == OFFICIAL_MODULE
    assert OFFICIAL_MODULE not in sys.modules
    assert ("models" in sys.modules) == had_models


def test_populate_imports_the_small_models(tmp_path: Path) -> None:
    from engines.models import model_status

    folder = populate_models_dir(tmp_path / "models", names=("inswapper-128", "arcface-w600k"))
    assert model_status(folder, "inswapper-128") == "verified"
    assert model_status(folder, "arcface-w600k") == "verified"
    assert model_status(folder, "simswap-224") == "missing"
    assert (folder / "inswapper-128" / "inswapper_128.onnx").is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".random-")]


def test_populate_refuses_models_it_cannot_make(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scrfd-10g"):
        populate_models_dir(tmp_path, names=("scrfd-10g",))
    with pytest.raises(ValueError, match="nonsense"):
        populate_models_dir(tmp_path, names=("inswapper-128", "nonsense"))
