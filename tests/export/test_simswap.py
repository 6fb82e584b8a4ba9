"""SimSwap generator: the official code's numbers (golden files), official keys, strict
loading, official zip, unsafe inputs."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import torch

from export.random_models import make_generator, write_checkpoints_zip, write_simswap_checkpoint
from export.simswap import (
    AdainBlock,
    CheckpointError,
    SimSwapGenerator,
    load_generator,
    load_state_dict_strict,
)
from tests.golden import reference as golden

SEED_224 = golden.GENERATOR_SEEDS[224]
SEED_512 = golden.GENERATOR_SEEDS[512]


@pytest.fixture(scope="module")
def checkpoint_224(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_simswap_checkpoint(tmp_path_factory.mktemp("g224") / "latest_net_G.pth",
                                    224, seed=SEED_224)


@pytest.fixture(scope="module")
def checkpoint_512(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # renamed: the size must come from the keys
    return write_simswap_checkpoint(tmp_path_factory.mktemp("g512") / "renamed.pth",
                                    512, seed=SEED_512)


@pytest.mark.parametrize("size", [224, 512])
def test_matches_the_official_generator_on_a_real_face(
        size: int, request: pytest.FixtureRequest) -> None:
    """Same weights, same face, same identity: the official ``Generator_Adain_Upsample``
    output (tests/golden/simswap_*.npz) within 1e-4."""
    reference = golden.load_golden(f"simswap_{size}")
    model = load_generator(request.getfixturevalue(f"checkpoint_{size}"))
    golden.check_weights(reference, model.state_dict())
    crop = golden.face_crop_rgb(size)
    golden.check_input(reference, crop)
    with torch.inference_mode():
        out = model(golden.to_tensor01(crop), torch.from_numpy(reference["source"]))
    assert tuple(out.shape) == tuple(reference["output_shape"])
    golden.compare_image_output(reference, out.numpy())


@pytest.fixture(scope="module")
def state_224(checkpoint_224: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint_224, weights_only=True)


def test_official_key_names_and_size() -> None:
    keys = set(SimSwapGenerator(224).state_dict())
    for key in ("first_layer.1.weight", "first_layer.2.running_var", "down1.0.weight",
                "down3.1.running_mean", "BottleNeck.0.conv1.1.weight",
                "BottleNeck.8.style2.linear.bias", "BottleNeck.4.conv2.1.bias",
                "up3.1.weight", "up1.2.running_var", "last_layer.1.weight"):
        assert key in keys
    assert not any(k.startswith(("down0.", "up0.")) for k in keys)
    params = sum(p.numel() for p in SimSwapGenerator(224).parameters())
    assert abs(params / 1e6 - 55.0) < 0.1  # SPEC §1: 55.0 M parameters
    big = SimSwapGenerator(512).state_dict()
    assert big["first_layer.1.weight"].shape == (32, 3, 7, 7)
    assert big["down0.0.weight"].shape == (64, 32, 3, 3)
    assert big["up0.1.weight"].shape == (32, 64, 3, 3)
    assert big["last_layer.1.weight"].shape == (3, 32, 7, 7)
    with pytest.raises(ValueError, match="256"):
        SimSwapGenerator(256)


def test_instance_norm_equals_the_official_formula() -> None:
    block = SimSwapGenerator(224).BottleNeck[0]
    assert isinstance(block, AdainBlock)
    norm = block.conv1[2]
    assert isinstance(norm, torch.nn.InstanceNorm2d) and not norm.affine and norm.eps == 1e-8
    x = torch.randn(2, 512, 7, 7) * 5 + 3
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    official = centred * torch.rsqrt((centred * centred).mean(dim=(2, 3), keepdim=True) + 1e-8)
    torch.testing.assert_close(norm(x), official, atol=1e-5, rtol=1e-5)


def test_loads_the_state_dict_strictly_and_runs(checkpoint_224: Path) -> None:
    model = load_generator(checkpoint_224)
    source = make_generator(224, seed=SEED_224)
    assert model.size == 224 and not model.training
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # one call, two identities on the same face: the identity vector must matter (what
    # the numbers must be is checked against the official code above)
    target = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).repeat(2, 1,
                                                                                          1, 1)
    latent = torch.nn.functional.normalize(torch.randn(2, 512), dim=1)
    with torch.inference_mode():
        out = model(target, latent)
    assert out.shape == (2, 3, 224, 224)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out[0] - out[1]).abs().max()) > 1e-3


def test_renamed_key_is_named(checkpoint_224: Path, state_224: dict[str, torch.Tensor],
                              tmp_path: Path) -> None:
    state = dict(state_224)
    state["BottleNeck.3.style1.fc.weight"] = state.pop("BottleNeck.3.style1.linear.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    message = str(err.value)
    assert "missing keys: BottleNeck.3.style1.linear.weight" in message
    assert "unexpected keys: BottleNeck.3.style1.fc.weight" in message
    assert str(path) in message


def test_missing_and_misshapen_keys_are_named(state_224: dict[str, torch.Tensor]) -> None:
    state = dict(state_224)
    del state["up2.1.bias"]
    state["down2.0.weight"] = torch.zeros(256, 128, 1, 1)
    with pytest.raises(CheckpointError) as err:
        load_state_dict_strict(SimSwapGenerator(224), state, "test.pth")
    message = str(err.value)
    assert "missing keys: up2.1.bias" in message
    assert "down2.0.weight (expected (256, 128, 3, 3), got (256, 128, 1, 1))" in message


def test_old_checkpoints_without_batchnorm_counters_load(
        state_224: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in state_224.items() if not k.endswith("num_batches_tracked")}
    assert len(state) < len(state_224)
    model = SimSwapGenerator(224)
    load_state_dict_strict(model, state, "old.pth")
    assert torch.equal(model.state_dict()["up1.1.weight"], state["up1.1.weight"])


def test_official_zip_is_read_in_place(tmp_path: Path, checkpoint_224: Path) -> None:
    archive = tmp_path / "checkpoints.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("checkpoints/", b"")
        zf.write(checkpoint_224, "checkpoints/people/latest_net_G.pth")
        zf.writestr("checkpoints/people/iter.txt", b"1,0")
    model = load_generator(archive)
    assert model.size == 224
    assert torch.equal(model.state_dict()["last_layer.1.weight"],
                       torch.load(checkpoint_224, weights_only=True)["last_layer.1.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.zip"]  # no extraction
    with pytest.raises(CheckpointError, match=r"512/550000_net_G\.pth"):
        load_generator(archive, size=512)


def test_random_models_zip_has_the_official_layout(tmp_path: Path) -> None:
    archive = write_checkpoints_zip(tmp_path / "checkpoints.zip", sizes=(224,), seed=1)
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["checkpoints/people/latest_net_G.pth"]
    assert load_generator(archive).size == 224


def test_512_is_inferred_from_keys(checkpoint_512: Path) -> None:
    assert load_generator(checkpoint_512).size == 512
    with pytest.raises(CheckpointError, match=r"unexpected keys: down0\.0\.bias.*wrong shapes: "
                                              r".*last_layer\.1\.weight \(expected \(3, 64"):
        load_generator(checkpoint_512, size=224)


@pytest.mark.parametrize(("entry", "reason"), [
    ("../escaped.txt", "'..' component"), ("checkpoints\\..\\..\\escaped.txt", "'..' component"),
    ("C:/escaped.txt", "absolute path"), ("/tmp/escaped.txt", "absolute path"),
])
def test_zip_with_escaping_entry_is_refused(tmp_path: Path, entry: str, reason: str) -> None:
    """The whole archive is refused, even though the generator itself is in it."""
    folder = tmp_path / "inside"
    folder.mkdir()
    archive = folder / "checkpoints.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("checkpoints/people/latest_net_G.pth", b"not read")
        zf.writestr(entry, b"should never be written")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(CheckpointError, match=f"{re.escape(repr(entry))} is unsafe "
                                              f"\\({reason}\\)"):
        load_generator(archive)
    assert sorted(tmp_path.rglob("*")) == before  # read in place: nothing extracted


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickle_payload_in_pth_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "latest_net_G.pth"
    torch.save({"first_layer.1.weight": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a readable torch state_dict"):
        load_generator(path)
    assert not marker.exists()


def test_garbage_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(CheckpointError, match=r"latest_net_G\.pth"):
        load_generator(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_generator(tmp_path / "absent.pth")
