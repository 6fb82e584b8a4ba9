"""Paste swapped face crops back into the frame, working only inside the face region.

The official paste-backs warp the crop, a mask and a diff image to the *whole*
frame and blend in float over the whole frame (3+ full-frame passes per face).
Here each face costs work proportional to its own size: the bounding region of
the crop's footprint in the frame is computed from the inverse transform of the
crop's corners (clipped to the frame, so faces cut by the border work), only that
region is warped (one composed matrix, ``dsize`` = region size), and the blend
runs only there. The soft mask is made in crop space and cached per crop size and
face size (``mask_scale``).

Mask geometry follows the official paste: SimSwap erodes its mask by a fixed 40 px and
blurs it with a fixed 41 px Gaussian in *frame* pixels, so a close-up face is swapped over
more of its crop (0.68 of the footprint at 224 px, 0.82 at 400 px, 0.94 at 1200 px). Here
the zero band, corner radius and ramp are fractions of the footprint up to
``REFERENCE_FOOTPRINT`` and a fixed number of frame pixels beyond it, which gives the same
swapped area within 0.03 from 224 to 1200 px; smaller faces keep the fractional (gentler)
bands, where fixed ones would leave almost nothing swapped.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from realtime.faces.align import invert_affine, transform_points
from realtime.types import ValueTypeError, check_array, check_image

# Zero band at the crop edge, as a fraction of the crop size: generators produce
# their worst pixels at the border, and the band hides the warp's edge samples.
ERODE_FRACTION = 0.04
# Corner radius of the mask's rounded rectangle, as a fraction of the crop size.
CORNER_FRACTION = 0.25
# Footprint (frame pixels across the crop) above which the bands stop growing with the
# face: the official paste's fixed-pixel erosion matches the fractions at this size.
REFERENCE_FOOTPRINT = 224.0
# mask_scale is rounded to steps of this ratio so that the cached masks are few.
SCALE_STEP = 1.02
# Colour matching never scales contrast by more than this factor either way, so a
# flat generator output cannot have its noise blown up.
MAX_GAIN = 2.0
# Colour statistics are taken on a grid of about this many samples: the mean and
# standard deviation of a face are stable long before every pixel is read.
COLOR_SAMPLES = 4096

Region = tuple[int, int, int, int]


def face_region(matrix: np.ndarray, crop_size: int, frame_shape: tuple[int, ...],
                margin: int = 2) -> Region:
    """Frame rectangle ``(x0, y0, x1, y1)`` (end-exclusive) covering the crop's footprint.

    The crop's outer corners mapped back through the inverse of ``matrix``
    (frame→crop), widened by ``margin`` pixels for bilinear support and clipped to
    the frame; empty (``x1 <= x0`` or ``y1 <= y0``) when the face is off-frame.
    """
    check_array("matrix", np.asarray(matrix, dtype=np.float64), (2, 3))
    height, width = int(frame_shape[0]), int(frame_shape[1])
    edge = crop_size - 0.5  # pixel centres are integers: the crop spans [-0.5, S-0.5]
    corners = np.array([[-0.5, -0.5], [edge, -0.5], [-0.5, edge], [edge, edge]])
    pts = transform_points(invert_affine(matrix), corners)
    x0 = max(0, math.floor(pts[:, 0].min()) - margin)
    y0 = max(0, math.floor(pts[:, 1].min()) - margin)
    x1 = min(width, math.ceil(pts[:, 0].max()) + 1 + margin)
    y1 = min(height, math.ceil(pts[:, 1].max()) + 1 + margin)
    return x0, y0, max(x0, x1), max(y0, y1)


def region_matrix(matrix: np.ndarray, region: Region) -> np.ndarray:
    """Compose ``matrix`` (frame→crop) with the region's offset: region pixel → crop pixel."""
    composed = np.array(matrix, dtype=np.float64)
    composed[:, 2] += composed[:, :2] @ np.array([region[0], region[1]], dtype=np.float64)
    return composed


def footprint(matrix: np.ndarray, crop_size: int) -> float:
    """Frame pixels across the crop's side: ``crop_size`` over the matrix's scale."""
    m = np.asarray(matrix, dtype=np.float64)
    det = abs(float(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]))
    if det < 1e-12:
        raise ValueTypeError(f"matrix is singular (det={det:g})")
    return crop_size / math.sqrt(det)


def mask_scale(matrix: np.ndarray, crop_size: int) -> float:
    """Factor on the mask's bands for this face: 1 up to ``REFERENCE_FOOTPRINT``, then
    ``REFERENCE_FOOTPRINT / footprint`` (bands fixed in frame pixels), rounded to powers
    of ``SCALE_STEP`` so that a moving face reuses cached masks."""
    ratio = REFERENCE_FOOTPRINT / footprint(matrix, crop_size)
    if ratio >= 1.0:
        return 1.0
    return float(min(1.0, SCALE_STEP ** round(math.log(ratio) / math.log(SCALE_STEP))))


@functools.lru_cache(maxsize=128)
def crop_mask(size: int, feather: float, scale: float = 1.0) -> np.ndarray:
    """Soft face mask in crop space, float32 (size, size) in [0, 1]; cached, read-only.

    A rounded rectangle eroded by ``ERODE_FRACTION`` × ``scale`` of the crop from each
    edge, rising from 0 to 1 over ``feather`` × ``scale`` × size pixels with a
    smoothstep, corner radius ``CORNER_FRACTION`` × ``scale`` × size, built from the
    exact signed distance to the rounded rectangle (no blur kernel, so it is the same
    at every size up to scale). ``scale`` in (0, 1] is the face's ``mask_scale``.
    """
    if size < 8:
        raise ValueError(f"size: expected >= 8, got {size}")
    if not 0.0 <= feather < 0.5:
        raise ValueError(f"feather: expected a fraction in [0, 0.5), got {feather}")
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale: expected a factor in (0, 1], got {scale}")
    erode = ERODE_FRACTION * size * scale
    ramp = feather * size * scale
    radius = CORNER_FRACTION * size * scale
    centre = (size - 1) / 2.0
    half = centre - erode  # half-extent of the rounded rectangle's outer edge
    coords = np.abs(np.arange(size, dtype=np.float64) - centre) - (half - radius)
    qx = coords[None, :]
    qy = coords[:, None]
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    distance = outside + inside - radius  # < 0 inside the rounded rectangle
    if ramp > 0:
        t = np.clip(-distance / ramp, 0.0, 1.0)
        mask = t * t * (3.0 - 2.0 * t)
    else:
        mask = (distance < 0).astype(np.float64)
    out = mask.astype(np.float32)
    out.setflags(write=False)
    return out


def sample_step(height: int, width: int) -> int:
    """Grid step that leaves about ``COLOR_SAMPLES`` pixels for colour statistics."""
    return max(1, int(math.sqrt(height * width / COLOR_SAMPLES)))


def color_transfer(source: np.ndarray, target: np.ndarray,
                   weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and bias that give ``source`` the weighted mean and standard
    deviation of ``target`` (float arrays (N, 3), weights (N,)). Returns float64 (3,) ×2.
    """
    w = weights.astype(np.float64).reshape(-1, 1)
    total = float(w.sum())
    if total < 1e-6:
        return np.ones(3), np.zeros(3)
    src = source.astype(np.float64).reshape(-1, 3)
    dst = target.astype(np.float64).reshape(-1, 3)
    mu_s = (w * src).sum(axis=0) / total
    mu_t = (w * dst).sum(axis=0) / total
    sd_s = np.sqrt((w * (src - mu_s) ** 2).sum(axis=0) / total)
    sd_t = np.sqrt((w * (dst - mu_t) ** 2).sum(axis=0) / total)
    gain = np.where(sd_s > 1.0, sd_t / np.maximum(sd_s, 1e-6), 1.0)
    gain = np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN)
    return gain, mu_t - gain * mu_s


def match_color(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` (BGR uint8) with each channel's mean and standard deviation inside
    ``mask`` (float32, same height and width) matched to ``target``'s.

    Statistics in BGR on a subsampled grid (a face's statistics are stable with a
    few thousand samples; LAB would need two colour conversions of the region per
    face for little visible gain on skin tones); the gain is limited to
    [1/MAX_GAIN, MAX_GAIN]. Returns a new uint8 array.
    """
    check_image("source", source)
    check_image("target", target)
    if source.shape != target.shape or mask.shape != source.shape[:2]:
        raise ValueTypeError(
            f"match_color: expected equal shapes, got source {source.shape}, "
            f"target {target.shape}, mask {mask.shape}"
        )
    step = sample_step(*mask.shape)
    gain, bias = color_transfer(
        source[::step, ::step], target[::step, ::step], mask[::step, ::step]
    )
    # A per-channel table: one cheap lookup pass over the region, and exactly
    # reproducible on other devices (no fixed-point arithmetic to match).
    return cv2.LUT(source, color_lut(gain, bias))


def color_lut(gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """uint8 (1, 256, 3) table mapping each channel's level v to round(gain·v + bias)."""
    levels = np.arange(256, dtype=np.float64)
    table = np.clip(np.round(gain[None, :] * levels[:, None] + bias[None, :]), 0, 255)
    return np.ascontiguousarray(table.astype(np.uint8)[None])


def blend(front: np.ndarray, back: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``front·mask + back·(1-mask)`` rounded to uint8 (``mask`` float32 (H, W))."""
    return cv2.blendLinear(front, back, mask, 1.0 - mask)


def paste_mask(size: int, matrix: np.ndarray, feather: float,
               face_mask: np.ndarray | None = None) -> np.ndarray:
    """The crop-space weight of the swapped crop: the box mask for this face's size,
    times ``face_mask`` (the parsing mask, float32 (S, S)) when given."""
    box = crop_mask(size, feather, mask_scale(matrix, size))
    if face_mask is None:
        return box
    if face_mask.shape != (size, size):
        raise ValueTypeError(f"face_mask: expected ({size}, {size}), got {face_mask.shape}")
    return box * face_mask.astype(np.float32, copy=False)


def paste_face(frame: np.ndarray, swapped_crop: np.ndarray, matrix: np.ndarray, *,
               feather: float = 0.08, color_match: bool = True,
               face_mask: np.ndarray | None = None) -> None:
    """Paste ``swapped_crop`` (BGR uint8 (S, S, 3)) into ``frame`` IN PLACE.

    ``matrix`` maps frame pixels to crop pixels (``AlignedFace.matrix``). Only the
    face region is read and written; pixels whose mask weight is 0 keep their
    exact values. ``face_mask`` (the parsing mask in crop space) limits the paste to
    the parsed face: SimSwap blends the crop with it before pasting with its box mask;
    multiplying the two masks gives the same weights, and outside the face the frame
    keeps its own pixels instead of a twice-resampled copy of them.
    """
    check_image("frame", frame)
    check_image("swapped_crop", swapped_crop)
    size = swapped_crop.shape[0]
    if swapped_crop.shape[1] != size:
        raise ValueTypeError(f"swapped_crop: expected a square crop, got {swapped_crop.shape}")
    region = face_region(matrix, size, frame.shape)
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return
    composed = region_matrix(matrix, region)
    dsize = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(swapped_crop, composed, dsize, flags=flags,
                            borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(paste_mask(size, matrix, feather, face_mask), composed, dsize,
                          flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    target = frame[y0:y1, x0:x1]
    if color_match:
        warped = match_color(warped, target, mask)
    target[...] = blend(warped, target, mask)


def paste_faces(frame: np.ndarray, crops: list[np.ndarray], matrices: list[np.ndarray], *,
                feather: float = 0.08, color_match: bool = True) -> None:
    """``paste_face`` for several faces, in order (later faces win where they overlap)."""
    if len(crops) != len(matrices):
        raise ValueTypeError(f"paste_faces: {len(crops)} crops but {len(matrices)} matrices")
    for crop, matrix in zip(crops, matrices, strict=True):
        paste_face(frame, crop, matrix, feather=feather, color_match=color_match)
