"""The region-only composite and the alignment warp in torch, for any device.

Same maths as ``realtime.frame.composite`` and ``realtime.faces.align.warp_face``, written so
that on a GPU the frame is uploaded once and warp, mask, colour match and blend
stay on the device. On the CPU device the results equal the OpenCV path within
one grey level: sampling coordinates are rounded to 1/32 pixel as OpenCV's
``warpAffine`` does (``INTER_BITS`` = 5), and values are rounded to integers at
the same points where the OpenCV path stores uint8.

Frames are torch uint8 (H, W, 3) BGR tensors; matrices are numpy float64 (2, 3)
mapping frame pixels to crop pixels (``AlignedFace.matrix``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from realtime.faces.align import invert_affine
from realtime.frame.composite import (
    MAX_GAIN,
    crop_mask,
    face_region,
    mask_scale,
    region_matrix,
    sample_step,
)
from realtime.types import ValueTypeError

# OpenCV's warpAffine quantises source coordinates to 1/2**INTER_BITS pixel
# (INTER_BITS = 5) after computing them in fixed point at 1/2**AB_BITS (AB_BITS = 10).
_SUBPIXEL = 32
_AB_SCALE = 1024


def _check_frame(name: str, frame: torch.Tensor) -> None:
    if not isinstance(frame, torch.Tensor):
        raise ValueTypeError(f"{name}: expected torch.Tensor, got {type(frame).__name__}")
    if frame.dtype != torch.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueTypeError(
            f"{name}: expected uint8 (H, W, 3) tensor, got {frame.dtype} {tuple(frame.shape)}"
        )


def fixed_point_coords(matrix: np.ndarray, out_hw: tuple[int, int],
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source coordinates of every output pixel in 1/32 px units (int64 (h, w) ×2),
    computed as OpenCV's warpAffine does: the row term and the column term are each
    rounded to 1/1024 px, half a 1/32 step is added, and the sum is floored. The
    separate rounding matters when a coordinate sits near half a step.
    """
    out_h, out_w = out_hw
    # The six coefficients go in as Python floats (kernel arguments), never as a tensor:
    # uploading a small pageable array costs a host synchronisation on CUDA, which would
    # make every face of every frame wait for whatever the GPU is running (the swap).
    m = [[float(c) for c in row] for row in np.asarray(matrix, dtype=np.float64)]
    u = torch.arange(out_w, device=device, dtype=torch.float64)
    v = torch.arange(out_h, device=device, dtype=torch.float64)
    step = _AB_SCALE // _SUBPIXEL
    coords = []
    for row in (0, 1):
        row_term = torch.round((m[row][1] * v + m[row][2]) * _AB_SCALE)[:, None]
        col_term = torch.round(m[row][0] * u * _AB_SCALE)[None, :]
        coords.append(torch.floor((row_term + col_term + step // 2) / step).to(torch.int64))
    return coords[0], coords[1]


def sample_affine(source: torch.Tensor, matrix: np.ndarray, out_hw: tuple[int, int], *,
                  border: str = "replicate") -> torch.Tensor:
    """Bilinear sample of ``source`` (C, H, W) at ``matrix`` (output pixel → source
    pixel, OpenCV pixel-centre convention); returns (C, h, w) float32, unrounded.

    The four taps are gathered explicitly with integer weights (multiples of
    1/1024, exact in float32 for values up to 255), so for uint8 data
    ``floor(x + 0.5)`` of the result is exactly OpenCV's uint8 output.
    ``border`` is ``"replicate"`` (``BORDER_REPLICATE``), ``"constant"`` (0) or
    ``"reflect"`` (``BORDER_REFLECT``, ``fedcba|abcdef``).
    """
    if border not in ("replicate", "constant", "reflect"):
        raise ValueError(f"border: expected replicate, constant or reflect, got {border!r}")
    channels, src_h, src_w = source.shape
    x32, y32 = fixed_point_coords(matrix, out_hw, source.device)
    ix, fx = x32 >> 5, (x32 & 31).to(torch.float32)
    iy, fy = y32 >> 5, (y32 & 31).to(torch.float32)
    flat = source.reshape(channels, -1).float()
    total = torch.zeros((channels, *out_hw), dtype=torch.float32, device=source.device)
    taps = ((0, 0, (32.0 - fx) * (32.0 - fy)), (0, 1, fx * (32.0 - fy)),
            (1, 0, (32.0 - fx) * fy), (1, 1, fx * fy))
    for dy, dx, weight in taps:
        ty, tx = iy + dy, ix + dx
        if border == "constant":
            inside = (tx >= 0) & (tx < src_w) & (ty >= 0) & (ty < src_h)
            weight = weight * inside
        elif border == "reflect":  # mirror about the edge, repeated with period 2n
            ty, tx = _reflect(ty, src_h), _reflect(tx, src_w)
        ty = ty.clamp(0, src_h - 1)
        tx = tx.clamp(0, src_w - 1)
        values = flat[:, (ty * src_w + tx).reshape(-1)].reshape(channels, *out_hw)
        total += values * weight
    return total / 1024.0


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """OpenCV's ``BORDER_REFLECT`` index for any distance outside ``[0, size)``."""
    folded = torch.remainder(index, 2 * size)
    return torch.where(folded < size, folded, 2 * size - 1 - folded)


def _to_uint8_values(values: torch.Tensor) -> torch.Tensor:
    """Round half up and saturate, as OpenCV's fixed-point descale does."""
    return torch.floor(values + 0.5).clamp_(0, 255)


def warp_face_torch(frame_t: torch.Tensor, matrix: np.ndarray, size: int) -> torch.Tensor:
    """Alignment warp on the device: uint8 (size, size, 3) crop, equal to
    ``cv2.warpAffine(frame, matrix, (size, size), INTER_LINEAR, BORDER_CONSTANT 0)``
    (``align.warp_face``: black outside the frame) within one grey level. Only the
    crop's footprint in the frame is converted to float, never the whole frame.
    """
    _check_frame("frame_t", frame_t)
    height, width = int(frame_t.shape[0]), int(frame_t.shape[1])
    crop_to_frame = invert_affine(matrix)
    # The frame rectangle the crop samples from: its footprint, clipped, +1 px.
    x0, y0, x1, y1 = face_region(matrix, size, (height, width), margin=1)
    if x1 <= x0 or y1 <= y0:
        # Entirely off-frame: every sample is outside, so the crop is black.
        return torch.zeros((size, size, 3), dtype=torch.uint8, device=frame_t.device)
    # Shift the crop→frame map into the window's coordinates. Zero outside the window
    # equals zero outside the frame: the window spans every tap that lies inside the
    # frame (footprint + 1 px), and it is clipped only at the frame's own edges.
    shifted = crop_to_frame.copy()
    shifted[:, 2] -= (x0, y0)
    window = frame_t[y0:y1, x0:x1].permute(2, 0, 1).float()
    crop = sample_affine(window, shifted, (size, size), border="constant")
    return _to_uint8_values(crop).permute(1, 2, 0).to(torch.uint8)


def crop_mask_torch(size: int, feather: float, device: torch.device,
                    scale: float = 1.0) -> torch.Tensor:
    """``crop_mask`` as a float32 (size, size) tensor on ``device`` (cached per stream;
    uploaded through pinned memory: no host wait)."""
    from realtime.frame.streams import stream_key

    return _crop_mask_torch(size, feather, device, scale, stream_key())


@functools.lru_cache(maxsize=128)
def _crop_mask_torch(size: int, feather: float, device: torch.device, scale: float,
                     stream: int) -> torch.Tensor:
    from realtime.frame.motion_torch import upload

    return upload(np.array(crop_mask(size, feather, scale)), device)


def color_transfer_torch(source: torch.Tensor, target: torch.Tensor,
                         weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel gain and bias (float64 (3,) each) as ``composite.color_transfer``."""
    w = weights.double().reshape(-1, 1)
    total = w.sum()
    src = source.double().reshape(-1, 3)
    dst = target.double().reshape(-1, 3)
    # No Python branch on a device value: a branch would synchronise the GPU stream.
    empty = total < 1e-6
    total = total.clamp_min(1e-6)
    mu_s = (w * src).sum(dim=0) / total
    mu_t = (w * dst).sum(dim=0) / total
    sd_s = torch.sqrt((w * (src - mu_s) ** 2).sum(dim=0) / total)
    sd_t = torch.sqrt((w * (dst - mu_t) ** 2).sum(dim=0) / total)
    ones = torch.ones_like(sd_s)
    gain = torch.where(sd_s > 1.0, sd_t / sd_s.clamp_min(1e-6), ones)
    gain = torch.where(empty, ones, gain.clamp(1.0 / MAX_GAIN, MAX_GAIN))
    bias = torch.where(empty, torch.zeros_like(mu_s), mu_t - gain * mu_s)
    return gain, bias


def paste_face_torch(frame_t: torch.Tensor, swapped_t: torch.Tensor, matrix: np.ndarray, *,
                     feather: float = 0.08, color_match: bool = True,
                     face_mask: torch.Tensor | None = None) -> None:
    """``composite.paste_face`` on tensors: ``swapped_t`` uint8 (S, S, 3) BGR on the
    frame's device is pasted into ``frame_t`` IN PLACE, inside the face region only;
    ``face_mask`` (float32 (S, S) on the device) is the parsing mask, as there.
    """
    _check_frame("frame_t", frame_t)
    _check_frame("swapped_t", swapped_t)
    size = int(swapped_t.shape[0])
    if int(swapped_t.shape[1]) != size:
        raise ValueTypeError(f"swapped_t: expected a square crop, got {tuple(swapped_t.shape)}")
    region = face_region(matrix, size, tuple(frame_t.shape))
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return
    composed = region_matrix(matrix, region)
    out_hw = (y1 - y0, x1 - x0)
    device = frame_t.device
    swapped = swapped_t.to(device).permute(2, 0, 1)
    warped = _to_uint8_values(sample_affine(swapped, composed, out_hw, border="replicate"))
    mask_crop = crop_mask_torch(size, float(feather), device, mask_scale(matrix, size))[None]
    if face_mask is not None:
        if tuple(face_mask.shape) != (size, size):
            raise ValueTypeError(f"face_mask: expected ({size}, {size}), got "
                                 f"{tuple(face_mask.shape)}")
        mask_crop = mask_crop * face_mask.to(device, torch.float32)[None]
    mask = sample_affine(mask_crop, composed, out_hw, border="constant")[0]
    target_view = frame_t[y0:y1, x0:x1]
    target = target_view.permute(2, 0, 1).float()
    if color_match:
        step = sample_step(*out_hw)
        gain, bias = color_transfer_torch(
            warped[:, ::step, ::step].permute(1, 2, 0),
            target[:, ::step, ::step].permute(1, 2, 0),
            mask[::step, ::step],
        )
        lut = color_lut_torch(gain, bias)  # (3, 256) as composite.color_lut
        index = warped.to(torch.int64)
        warped = torch.stack([lut[c][index[c]] for c in range(3)])
    # cv2.blendLinear's arithmetic: float32 weights m and 1-m over their sum + 1e-5.
    inverse = 1.0 - mask
    blended = (warped * mask + target * inverse) / (mask + inverse + 1e-5)
    target_view.copy_(torch.round(blended).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8))


def color_lut_torch(gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-channel 256-entry lookup table (float32 (3, 256)) as ``composite.color_lut``."""
    levels = torch.arange(256, dtype=torch.float64, device=gain.device)
    table = torch.round(gain[:, None] * levels[None, :] + bias[:, None]).clamp(0, 255)
    return table.to(torch.float32)
