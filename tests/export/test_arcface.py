"""SimSwap ArcFace: official attribute names, the restricted unpickler, the state_dict cache."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engines.base import ModelFileError
from export import arcface
from export.arcface import (
    ArcFaceResNet,
    UnsafePickleError,
    cache_path,
    embed_simswap,
    load_arcface,
)
from export.random_models import OFFICIAL_MODULE, make_arcface, pickle_official_arcface
from tests.golden import reference as golden


@pytest.fixture(scope="module")
def source_model() -> ArcFaceResNet:
    return make_arcface(seed=golden.ARCFACE_SEED)


@pytest.fixture(scope="module")
def crops(astronaut_bgr: np.ndarray) -> torch.Tensor:
    """Two 224 crops: the astronaut's face region and a mirrored copy, RGB in [0, 1]."""
    face = cv2.resize(astronaut_bgr[30:250, 140:340], (224, 224))[:, :, ::-1]
    batch = np.stack([face, face[:, ::-1]]).astype(np.float32) / 255.0
    return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())


@pytest.fixture(scope="module")
def official_file(tmp_path_factory: pytest.TempPathFactory, source_model: ArcFaceResNet) -> Path:
    path = tmp_path_factory.mktemp("arcface") / "arcface_checkpoint.tar"
    pickle_official_arcface(source_model, path)
    return path


def test_official_attribute_names() -> None:
    keys = ArcFaceResNet().state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "prelu.weight", "layer1.0.bn0.weight",
                "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer3.22.se.fc.0.weight", "layer3.22.se.fc.1.weight",
                "layer3.22.se.fc.2.bias", "layer4.2.bn2.running_var", "bn2.weight",
                "fc.weight", "bn3.running_mean"):
        assert key in keys, key
    assert keys["fc.weight"].shape == (512, 512 * 7 * 7)
    assert "layer3.23.bn0.weight" not in keys  # [3, 4, 23, 3]
    assert "conv1.bias" not in keys


def test_official_pickle_loads_through_the_restricted_unpickler(official_file: Path) -> None:
    """Loaded through our restricted unpickler, the checkpoint gives the identity vectors
    the official ``models.arcface_models.ResNet`` gives when the same file is loaded the
    official way, on real faces (tests/golden/arcface_simswap.npz). The raw output is
    compared in tests/export/test_onnx.py, next to the ONNX export's."""
    assert OFFICIAL_MODULE not in sys.modules  # registered only while writing
    model = load_arcface(official_file)
    assert type(model) is ArcFaceResNet and not model.training
    assert OFFICIAL_MODULE not in sys.modules
    reference = golden.load_golden("arcface_simswap")
    golden.check_weights(reference, model.state_dict())
    crops = golden.arcface_crops_rgb()
    golden.check_input(reference, crops)
    with torch.inference_mode():
        got = embed_simswap(model, golden.to_tensor01(crops))
    assert got.shape == (2, 512)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(2))
    golden.compare_vectors(reference, "embedding", got.numpy())
    # different faces, different vectors (a mirrored face is not the same input)
    assert float((got[0] - got[1]).abs().max()) > 1e-4
    assert cache_path(official_file).is_file()


def test_the_plain_state_dict_is_used_once_written(
        official_file: Path, crops: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    load_arcface(official_file)  # makes sure the cache exists
    calls: list[Path] = []

    def counting(path: Path) -> dict[str, torch.Tensor]:
        calls.append(path)
        return real(path)

    real = arcface.load_pickled_arcface
    monkeypatch.setattr(arcface, "load_pickled_arcface", counting)
    cached = load_arcface(official_file)
    assert calls == []
    assert set(cached.state_dict()) == set(ArcFaceResNet().state_dict())
    # a touched checkpoint (same bytes) keeps its cache: it is keyed by sha256
    st = official_file.stat()
    os.utime(official_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_arcface(official_file)
    assert calls == []
    # a cache whose bytes changed is rebuilt
    cache = cache_path(official_file)
    with open(cache, "r+b") as handle:
        handle.seek(cache.stat().st_size // 2)
        handle.write(b"\0" * 4096)
    load_arcface(official_file)
    assert calls == [official_file]
    # and the cache file itself is a plain state_dict torch loads with weights_only
    data = torch.load(cache_path(official_file), weights_only=True)
    assert data["state_dict"]["fc.weight"].shape == (512, 25088)


def test_a_cache_of_another_format_is_rebuilt(
        tmp_path: Path, official_file: Path, source_model: ArcFaceResNet,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache written by another version (its stamp genuine, its format not ours) is
    not read: the checkpoint is unpickled again and the weights are the checkpoint's."""
    from engines.derived import write_stamp
    from engines.fileio import sha256_file

    cache_dir = tmp_path / "cache"
    cache = cache_path(official_file, cache_dir)
    cache.parent.mkdir(parents=True)
    torch.save({"format": arcface.CACHE_FORMAT + 1, "state_dict": {"fc.weight": torch.zeros(1)}},
               cache)
    write_stamp(cache, sha256_file(official_file))
    calls: list[Path] = []
    real = arcface.load_pickled_arcface

    def counting(checkpoint: Path) -> dict[str, torch.Tensor]:
        calls.append(checkpoint)
        return real(checkpoint)

    monkeypatch.setattr(arcface, "load_pickled_arcface", counting)
    model = load_arcface(official_file, cache_dir=cache_dir)
    assert calls == [official_file]
    assert torch.equal(model.state_dict()["fc.weight"], source_model.state_dict()["fc.weight"])


def test_no_cache_is_written_beside_the_users_file(
        tmp_path: Path, source_model: ArcFaceResNet) -> None:
    """Issue 15 item 6: the loader wrote ``<name>.state_dict.pt`` beside the checkpoint
    (a download folder, maybe read-only); the cache lives in the cache folder."""
    folder = tmp_path / "Downloads"
    folder.mkdir()
    path = pickle_official_arcface(source_model, folder / "arcface_checkpoint.tar")
    folder.chmod(0o555)
    try:
        load_arcface(path, cache_dir=tmp_path / "cache")
        assert sorted(p.name for p in folder.iterdir()) == ["arcface_checkpoint.tar"]
    finally:
        folder.chmod(0o755)
    assert cache_path(path, tmp_path / "cache").is_file()
    assert cache_path(path, tmp_path / "cache").parent == tmp_path / "cache" / "arcface"


def test_old_dict_with_dataparallel_in_legacy_format(
        tmp_path: Path, source_model: ArcFaceResNet, crops: torch.Tensor) -> None:
    path = pickle_official_arcface(source_model, tmp_path / "arcface_checkpoint.tar",
                                   legacy_dict=True, legacy_format=True)
    with open(path, "rb") as handle:
        assert handle.read(2) != b"PK"  # a raw pickle stream, not a zip
    model = load_arcface(path)
    with torch.inference_mode():
        torch.testing.assert_close(embed_simswap(model, crops[:1]),
                                   embed_simswap(source_model, crops[:1]), atol=1e-6, rtol=0)


def test_embedding_uses_every_second_pixel_and_imagenet_stats(
        source_model: ArcFaceResNet, crops: torch.Tensor) -> None:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        by_hand = source_model((crops[:1, :, ::2, ::2] - mean) / std)
        by_hand = by_hand / by_hand.norm(dim=1, keepdim=True)
        torch.testing.assert_close(embed_simswap(source_model, crops[:1]), by_hand)
    with pytest.raises(ValueError, match=r"\[B,3,S,S\]"):
        embed_simswap(source_model, crops[0])


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize(("payload", "writer", "global_name"), [
    (_System, "torch-zip", "system"),
    (_Eval, "torch-zip", "eval"),
    (_System, "raw-pickle", "system"),
])
def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path, payload: type,
                                                 writer: str, global_name: str) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "arcface_checkpoint.tar"
    evil = {"model": payload(marker)}
    if writer == "torch-zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    # the payload works when unpickled the unsafe way (so the test can fail)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError) as err:
        load_arcface(path)
    assert global_name in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()
    assert not cache_path(path).exists()


def test_the_payload_is_real(tmp_path: Path) -> None:
    """Control for the test above: unpickled without restriction, the payload runs."""
    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(_Eval(marker)))
    assert marker.exists()


def test_non_arcface_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arcface_checkpoint.tar"
    torch.save({"model": torch.nn.Sequential(torch.nn.Linear(2, 2))}, path)
    with pytest.raises(ModelFileError, match=r"expected a pickled models\.arcface_models\.ResNet"):
        load_arcface(path)


def test_training_state_of_the_old_dict_is_read_as_inert_data(tmp_path: Path) -> None:
    """The old upload may also hold the margin head and the SGD optimizer: read as data."""
    from export.arcface import RestrictedPickleModule
    from export.random_models import official_module_names

    path = tmp_path / "head.tar"
    with official_module_names() as classes:
        head = classes["ArcMarginModel"]()
        head.weight = torch.nn.Parameter(torch.randn(10, 4))
        head.m = 0.5
        optimizer = torch.optim.SGD([head.weight], lr=0.1, momentum=0.9)
        head.weight.sum().backward()
        optimizer.step()  # momentum buffers: state is a defaultdict
        torch.save({"epoch": 3, "metric_fc": torch.nn.DataParallel(head),
                    "optimizer": optimizer}, path)
    data = torch.load(path, pickle_module=RestrictedPickleModule, weights_only=False)
    assert data["epoch"] == 3
    assert data["metric_fc"].module.weight.shape == (10, 4)
    assert type(data["optimizer"]).__name__ == "_Inert"  # never the real optimizer class
    with pytest.raises(ModelFileError, match="got dict"):
        load_arcface(path)  # no 'model' in it
