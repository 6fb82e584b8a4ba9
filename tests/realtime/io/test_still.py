"""realtime.io.still: alpha, 16-bit and grey photos keep what the swap does not touch
(issue 15 item 6: they were flattened to 8-bit BGR without a word)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime.faces.sources import read_image
from realtime.io.still import merge_swapped, read_still


def _fake_swap(bgr: np.ndarray) -> np.ndarray:
    out = bgr.copy()
    out[10:20, 10:20] = (0, 0, 255)  # a "swapped face"
    return out


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_alpha_and_16_bits_are_kept_in_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    original = rng.integers(0, 65535, (40, 50, 4), dtype=np.uint16)
    path = _write(tmp_path / "in.png", original)
    still = read_still(path, read_image(path, "input"))
    assert still.has_alpha and still.deep
    out, notes = merge_swapped(still, _fake_swap(still.bgr), tmp_path / "out.png")
    assert notes == []
    assert out.dtype == np.uint16 and out.shape == (40, 50, 4)
    np.testing.assert_array_equal(out[:, :, 3], original[:, :, 3])  # alpha kept
    untouched = np.ones((40, 50), bool)
    untouched[10:20, 10:20] = False
    np.testing.assert_array_equal(out[untouched], original[untouched])  # all 16 bits
    np.testing.assert_array_equal(out[15, 15, :3], [0, 0, 65535])


def test_jpeg_output_says_what_it_cannot_hold(tmp_path: Path) -> None:
    original = np.full((30, 30, 4), 40000, np.uint16)
    path = _write(tmp_path / "in.png", original)
    still = read_still(path, read_image(path, "input"))
    out, notes = merge_swapped(still, _fake_swap(still.bgr), tmp_path / "out.jpg")
    assert out.dtype == np.uint8 and out.shape == (30, 30, 3)
    assert any("alpha" in n for n in notes) and any("16 bits" in n for n in notes)


def test_grey_photo_stays_grey_and_plain_bgr_is_untouched(tmp_path: Path) -> None:
    grey = np.tile(np.arange(60, dtype=np.uint8), (40, 1))
    path = _write(tmp_path / "grey.png", grey)
    still = read_still(path, read_image(path, "input"))
    out, notes = merge_swapped(still, _fake_swap(still.bgr), tmp_path / "out.png")
    assert out.ndim == 2 and notes == []
    bgr_path = _write(tmp_path / "c.png", np.full((20, 20, 3), 7, np.uint8))
    plain = read_still(bgr_path, read_image(bgr_path, "input"))
    swapped = _fake_swap(plain.bgr)
    assert merge_swapped(plain, swapped, tmp_path / "o.jpg") == (swapped, [])
