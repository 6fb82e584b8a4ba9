"""``main.py swap --identity-strength`` end to end (random-weight inswapper, t1.jpg)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main


def _swap(models_dir: Path, tmp_path: Path, *args: str | Path) -> int:
    argv = ["--models-dir", str(models_dir), "swap", "--engine", "onnxruntime-cpu",
            "--detector", "retinaface", "--model", "inswapper-128", "--faces", "largest",
            "--mask", "box", "--cache-dir", str(tmp_path / "cache"), *map(str, args)]
    return main.main(argv)


def test_strength_changes_the_swap_and_one_is_the_default(
    random_models_dir: Path, t1_path: Path, face_photos: dict[str, Path], tmp_path: Path,
) -> None:  # fmt: skip
    outputs = {}
    for label, extra in (("default", []), ("1", ["--identity-strength", "1"]),
                         ("0", ["--identity-strength", "0"]),
                         ("2", ["--identity-strength", "2"])):
        out = tmp_path / f"s{label}.png"
        rc = _swap(random_models_dir, tmp_path, "--source", face_photos["astronaut"],
                   "--input", t1_path, "--output", out, *extra)
        assert rc == 0
        image = cv2.imread(str(out))
        assert image is not None
        outputs[label] = image.astype(int)
    np.testing.assert_array_equal(outputs["default"], outputs["1"])
    for label in ("0", "2"):
        assert np.abs(outputs[label] - outputs["1"]).max() > 0, label
    assert np.abs(outputs["0"] - outputs["2"]).max() > 0


@pytest.mark.parametrize("value", ["-0.5", "2.5", "nan"])
def test_out_of_range_strength_is_refused_before_any_model_loads(
    value: str, t1_path: Path, face_photos: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    rc = _swap(tmp_path / "no-models", tmp_path, "--source", face_photos["astronaut"],
               "--input", t1_path, "--output", tmp_path / "o.png",
               f"--identity-strength={value}")
    err = capsys.readouterr().err
    assert rc == 1 and "--identity-strength" in err and "0..2" in err, err
    assert not (tmp_path / "o.png").exists()


def test_live_takes_the_strength_over_the_saved_setting() -> None:
    import argparse

    from realtime.cli.live import configure_parser, settings_from_args
    from realtime.config import Settings

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    saved = Settings(identity_strength=0.5)
    args = parser.parse_args(["--identity-strength", "1.5"])
    args.models_dir = "/models"
    assert settings_from_args(args, saved).identity_strength == 1.5
    args = parser.parse_args([])
    args.models_dir = "/models"
    assert settings_from_args(args, saved).identity_strength == 0.5  # the saved one kept
    args = parser.parse_args(["--identity-strength", "3"])
    args.models_dir = "/models"
    with pytest.raises(ValueError, match="--identity-strength"):
        settings_from_args(args, saved)
