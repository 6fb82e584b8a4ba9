"""The app icon's files (package data) and the containers other desktops want: an ICO
for Windows shortcuts and an ICNS for macOS bundles, both holding our PNGs as they are
(PNG entries are valid in ICO since Windows Vista and in ICNS since OS X 10.7)."""

from __future__ import annotations

import struct
from pathlib import Path

ICONS = Path(__file__).with_name("assets")
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# ICNS entry types holding a PNG of that many pixels a side
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def svg_path() -> Path:
    return ICONS / "swapcam.svg"


def png_path(size: int) -> Path:
    if size not in SIZES:
        raise ValueError(f"icon size: expected one of {SIZES}, got {size}")
    return ICONS / f"swapcam-{size}.png"


def png_paths() -> dict[int, Path]:
    return {size: png_path(size) for size in SIZES}


def ico_bytes(sizes: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256)) -> bytes:
    """A Windows .ico with one PNG entry per size (256 at most; 256 is written as 0)."""
    images = [png_path(size).read_bytes() for size in sizes]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries = b""
    for size, data in zip(sizes, images, strict=True):
        side = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return header + entries + b"".join(images)


def icns_bytes() -> bytes:
    """A macOS .icns with one PNG entry per size it has a type for."""
    body = b""
    for size, kind in ICNS_TYPES.items():
        data = png_path(size).read_bytes()
        body += kind + struct.pack(">I", 8 + len(data)) + data
    return b"icns" + struct.pack(">I", 8 + len(body)) + body
