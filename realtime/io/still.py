"""Photos that are more than 8-bit BGR: keep what the swap does not touch.

The face pipeline works on 8-bit BGR. A photo with an alpha channel, 16 bits per channel
or a single grey channel is swapped on its 8-bit BGR copy, and the result is put back into
the original: pixels the swap did not change keep their original values (all 16 bits),
changed pixels take the swapped value scaled to the original depth (and grey again for a
grey photo), and the alpha channel is kept. When the output format cannot hold what the
input had (alpha in a JPEG, 16 bits in a JPEG), the result is reduced and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
DEEP_SUFFIXES = (".png", ".tif", ".tiff")


@dataclass
class Still:
    """An input photo: its 8-bit BGR working copy and its decoded original."""

    bgr: np.ndarray
    original: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def has_alpha(self) -> bool:
        return self.original.ndim == 3 and self.original.shape[2] == 4

    @property
    def is_grey(self) -> bool:
        return self.original.ndim == 2 or self.original.shape[2] == 1

    @property
    def deep(self) -> bool:
        return self.original.dtype == np.uint16


def read_still(path: Path, bgr: np.ndarray) -> Still:
    """``bgr`` is the checked 8-bit copy (faces.sources.read_image); the original is
    decoded unchanged beside it."""
    original = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if original is None or original.dtype not in (np.uint8, np.uint16):
        note = [] if original is None else [f"{path}: {original.dtype} pixels were swapped "
                                            "as 8-bit and are written as 8-bit"]
        return Still(bgr, bgr, note)
    if original.shape[:2] != bgr.shape[:2]:  # e.g. EXIF rotation applied to one only
        return Still(bgr, bgr)
    return Still(bgr, original)


def merge_swapped(still: Still, swapped: np.ndarray, output: Path) -> tuple[np.ndarray,
                                                                          list[str]]:
    """The image to write to ``output`` and what could not be kept."""
    notes = list(still.notes)
    original = still.original
    if original is still.bgr or (original.dtype == np.uint8 and original.ndim == 3
                                 and original.shape[2] == 3):
        return swapped, notes
    changed = np.any(swapped != still.bgr, axis=2)
    scale = 257 if still.deep else 1  # 8-bit 0..255 onto 16-bit 0..65535
    if still.is_grey:
        colour = original.reshape(original.shape[:2]).copy()
        new = cv2.cvtColor(swapped, cv2.COLOR_BGR2GRAY).astype(original.dtype) * scale
    else:
        colour = original[:, :, :3].copy()
        new = swapped.astype(original.dtype) * scale
    colour[changed] = new[changed]
    out = colour
    suffix = output.suffix.lower()
    if still.has_alpha:
        if suffix in ALPHA_SUFFIXES:
            out = np.dstack([colour, original[:, :, 3]])
        else:
            notes.append(f"the input's alpha (transparency) channel was dropped: "
                         f"{suffix} cannot hold one; write .png to keep it")
    if still.deep and suffix not in DEEP_SUFFIXES:
        notes.append(f"the input's 16 bits per channel were reduced to 8: {suffix} holds "
                     "8 bits; write .png or .tif to keep them")
        out = (out // 257).astype(np.uint8)
    return np.ascontiguousarray(out), notes
