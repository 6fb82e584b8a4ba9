"""The app icon: the committed files are what ``icon_art`` draws, every PNG has its size
and transparent corners, and the ICO/ICNS containers hold those PNGs byte for byte."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from realtime.desktop import icon_art, icons


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def test_committed_svg_is_the_drawn_one() -> None:
    assert icons.svg_path().read_text(encoding="utf-8") == icon_art.icon_svg(), \
        "run: python -m realtime.desktop.icon_art"


@pytest.mark.parametrize("size", icons.SIZES)
def test_png_sizes_with_transparent_corners(size: int) -> None:
    image = decode(icons.png_path(size).read_bytes())
    assert image.shape == (size, size, 4)
    assert image[0, 0, 3] == 0 and image[-1, -1, 3] == 0  # rounded tile: corners clear
    assert image[size // 2, size // 2, 3] == 255


def test_pngs_are_renders_of_the_svg() -> None:
    fresh = decode(icon_art.render_png(icon_art.icon_svg(), 64)).astype(np.int16)
    committed = decode(icons.png_path(64).read_bytes()).astype(np.int16)
    assert np.abs(fresh - committed).mean() < 1.0
    amber = np.array([0x00, 0xB3, 0xFF])  # BGR: the face's right half is amber
    assert np.abs(committed[34, 38, :3] - amber).max() < 8


def test_ico_holds_the_pngs() -> None:
    data = icons.ico_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind, count) == (0, 1, 7)
    for i, size in enumerate((16, 24, 32, 48, 64, 128, 256)):
        w, h, _, _, planes, bits, length, offset = struct.unpack_from("<BBBBHHII", data,
                                                                      6 + 16 * i)
        assert (w, h) == ((0, 0) if size == 256 else (size, size)) and (planes, bits) == (1, 32)
        assert data[offset:offset + length] == icons.png_path(size).read_bytes()


def test_icns_holds_the_pngs() -> None:
    data = icons.icns_bytes()
    assert data[:4] == b"icns" and struct.unpack_from(">I", data, 4)[0] == len(data)
    position, found = 8, {}
    while position < len(data):
        kind, length = data[position:position + 4], struct.unpack_from(">I", data,
                                                                       position + 4)[0]
        found[kind] = data[position + 8:position + length]
        position += length
    assert found == {kind: icons.png_path(size).read_bytes()
                     for size, kind in icons.ICNS_TYPES.items()}


def test_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        icons.png_path(100)
