"""The "Match" person's photo on Windows: ``cv2.imread`` there opens paths through the
ANSI code page, so a photo under ``C:\\Users\\王`` reads as None. The fake imread does what
Windows' does: None for any path that is not in code page 1252."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.faces import mapping
from realtime.types import Detection


def windows_imread(path: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    try:
        str(path).encode("cp1252")
    except UnicodeEncodeError:
        return None  # the file name was turned into "?" on its way to fopen
    return cv2.imread(path, flags)


def test_a_match_photo_in_a_non_ansi_folder_is_read(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(cv2, "imread", windows_imread)
    folder = tmp_path / "王"
    folder.mkdir()
    photo = folder / "person.png"
    image = np.zeros((40, 30, 3), np.uint8)
    image[:, :, 2] = 200
    assert cv2.imencode(".png", image)[1].tofile(str(photo)) is None
    seen: list[tuple[int, ...]] = []

    def detect(pixels: np.ndarray) -> Sequence[Detection]:
        seen.append(pixels.shape)
        box = np.array([2, 2, 20, 30], np.float32)
        return [Detection(box, 0.9, np.full((5, 2), 10, np.float32))]

    vector = mapping.photo_vector(str(photo), detect, lambda pixels, points: pixels[0, 0])
    assert seen == [(40, 30, 3)] and vector.tolist() == [0, 0, 200]
