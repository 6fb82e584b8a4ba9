"""``main.py swap --enhance gfpgan`` end to end (random-weight inswapper and GFPGAN 1.4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main


def _swap(models_dir: Path, tmp_path: Path, out: Path, *extra: str) -> int:
    return main.main(["--models-dir", str(models_dir), "swap", "--engine", "onnxruntime-cpu",
                    "--detector", "retinaface", "--model", "inswapper-128",
                    "--faces", "largest", "--mask", "box",
                    "--cache-dir", str(tmp_path / "cache"), "--source",
                    str(tmp_path.parent / "src.png"), "--input", str(tmp_path / "in.png"),
                    "--output", str(out), *extra])


@pytest.mark.slow
def test_enhance_changes_the_face_only_and_blend_zero_is_the_plain_swap(
    gfpgan_models_dir: Path, gfpgan_export: object, t1_bgr: np.ndarray,
    face_photos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path.parent / "src.png").write_bytes(face_photos["astronaut"].read_bytes())
    image = t1_bgr[40:440, 0:440]  # one person of t1
    cv2.imwrite(str(tmp_path / "in.png"), image)
    outs = {}
    for label, extra in (("plain", ()), ("enhanced", ("--enhance", "gfpgan")),
                         ("blend0", ("--enhance", "gfpgan", "--enhance-blend", "0"))):
        out = tmp_path / f"{label}.png"
        rc = _swap(gfpgan_models_dir, tmp_path, out, *extra)
        text = capsys.readouterr()
        assert rc == 0, text.err
        if label != "plain":
            assert "enhanced with gfpgan" in text.out
        read = cv2.imread(str(out))
        assert read is not None
        outs[label] = read.astype(int)
    face_changed = np.any(outs["enhanced"] != outs["plain"], axis=2)
    assert face_changed.any()
    untouched = ~np.any(outs["plain"] != image.astype(int), axis=2) & ~np.any(
        outs["enhanced"] != image.astype(int), axis=2)
    assert untouched.mean() > 0.5  # the background is left alone by both
    # blend 0 keeps the swap (upsampled to the enhancer's size and pasted again)
    assert np.abs(outs["blend0"] - outs["plain"]).mean() < 1.0


def test_enhance_without_the_model_names_the_command(
    random_models_dir: Path, t1_path: Path, face_photos: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    rc = main.main(["--models-dir", str(random_models_dir), "swap", "--engine",
                    "onnxruntime-cpu", "--detector", "retinaface", "--model", "inswapper-128",
                    "--source", str(face_photos["astronaut"]), "--input", str(t1_path),
                    "--output", str(tmp_path / "o.png"), "--enhance", "gfpgan"])
    err = capsys.readouterr().err
    assert rc == 1 and "gfpgan-1.4" in err and "models" in err, err
    assert not (tmp_path / "o.png").exists()
