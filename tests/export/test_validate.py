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
