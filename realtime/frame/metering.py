"""Feeding the identity meter from the swap worker: host crops out of whatever the
processor made (numpy, or tensors on the GPU path: downloaded here, off the frame path)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from realtime.faces.quality import QualityMeter
    from realtime.types import SourceFace

log = logging.getLogger(__name__)


def host_crop(item: Any) -> np.ndarray:
    """A BGR uint8 crop on the host from an aligned face (host or device) or a swapped
    crop (numpy, ``MaskedCrop``, or a torch tensor on the GPU path)."""
    crop = getattr(item, "crop", None)
    if crop is None:
        crop = getattr(item, "crop_t", item)
    if not isinstance(crop, np.ndarray):
        crop = crop.detach().cpu().numpy()
    return np.ascontiguousarray(crop)


def measure_swaps(meter: QualityMeter, track_ids: Sequence[int], aligned: Sequence[Any],
                  crops: Sequence[Any], landmarks: Sequence[np.ndarray],
                  sources: Sequence[SourceFace]) -> None:
    """One meter reading per swapped face (landmarks in frame pixels, moved to crop
    space); a source photo the meter cannot use gives no number and never stops."""
    for i, (track_id, crop, src) in enumerate(zip(track_ids, crops, sources, strict=True)):
        if i >= len(landmarks):
            continue
        matrix = np.asarray(aligned[i].matrix, dtype=np.float64)
        points = landmarks[i].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
        try:
            meter.measure(track_id, host_crop(aligned[i]), host_crop(crop), points, src)
        except (ValueError, OSError) as exc:
            log.warning("identity meter: %s", exc)
