"""``swapcam detect`` on real photos: printed faces, JSON, drawings, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from realtime.faces.detect import DETECTOR_CHOICES


@pytest.fixture()
def photos(tmp_path: Path, t1_path: Path, astronaut_bgr: np.ndarray) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(t1_path, folder / "t1.jpg")
    cv2.imwrite(str(folder / "astronaut.png"), astronaut_bgr)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_choices_match_the_detector_module() -> None:
    from realtime.cli.detect import DETECTOR_CHOICES as CLI

    assert CLI == DETECTOR_CHOICES


def test_folder_to_json_and_drawings(photos: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_draw = tmp_path / "faces.json", tmp_path / "drawn"
    rc = main.main(["--models-dir", str(tmp_path / "models"), "detect", "--input", str(photos),
                    "--json", str(out_json), "--draw", str(out_draw)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "t1.jpg: 6 faces" in printed.out and "astronaut.png: 1 face" in printed.out
    assert "broken.jpg" in printed.out + printed.err
    data = json.loads(out_json.read_text())
    assert sorted(data) == ["astronaut.png", "t1.jpg"]
    assert len(data["t1.jpg"]) == 6
    face = data["astronaut.png"][0]
    assert sorted(face) == ["box", "landmarks", "score"]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
    points = np.array(face["landmarks"])
    assert points.shape == (5, 2)
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # SCRFD order
    assert points[2, 1] > points[0, 1] and points[3, 1] > points[2, 1]
    drawn = cv2.imread(str(out_draw / "t1.jpg"))
    original = cv2.imread(str(photos / "t1.jpg"))
    assert drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original).max() > 100  # boxes were drawn


def test_refuses_to_draw_over_the_input(photos: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = (photos / "t1.jpg").read_bytes()
    rc = main.main(["--models-dir", str(tmp_path), "detect", "--input", str(photos),
                    "--draw", str(photos)])
    assert rc == 1
    assert "overwrite" in capsys.readouterr().err
    assert (photos / "t1.jpg").read_bytes() == before


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_bad_input_is_a_clear_error(make: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nothing"
    if make == "empty":
        target.mkdir()
    rc = main.main(["--models-dir", str(tmp_path), "detect", "--input", str(target)])
    assert rc == 1
    err = capsys.readouterr().err
    assert ("no such file" in err) if make == "missing" else ("no photos" in err)
