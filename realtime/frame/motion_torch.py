"""The flow texture of :mod:`realtime.frame.motion` on a torch device (the GPU path).

The flow itself runs on the host (OpenCV's DIS on small grey crops made on the host from
the frame and each face's matrix: ``motion.frame_greys``; a device crop's grey, with
OpenCV's own fixed-point formula, is downloaded only where no host grey exists); the motion
goes up once, and the warp (``grid_sample`` with
OpenCV ``remap``'s sampling convention: pixel centres at integer coordinates, coordinates
rounded to 1/32 px, borders replicated), the blend with the plain texture and the live
mouth run on the device. On the CPU device it agrees with the host path within one grey
level.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# OpenCV's BGR → grey for uint8: (B·3735 + G·19235 + R·9798 + 2¹⁴) >> 15, bit-exact
# (its 15-bit fixed-point coefficients; checked against cv2.cvtColor in the tests).
_GREY_WEIGHTS = (3735, 19235, 9798)
_GREY_SHIFT = 15


def is_tensor(value: object) -> bool:
    """A torch tensor, without importing torch on the host-only path."""
    return type(value).__module__.startswith("torch") and hasattr(value, "device")


def _grey(crops: torch.Tensor) -> torch.Tensor:
    """uint8 grey of BGR uint8 crops (..., S, S, 3), as ``cv2.cvtColor`` makes it."""
    import torch

    b, g, r = (crops[..., i].to(torch.int32) for i in range(3))
    wb, wg, wr = _GREY_WEIGHTS
    return ((b * wb + g * wg + r * wr + (1 << (_GREY_SHIFT - 1))) >> _GREY_SHIFT).to(torch.uint8)


def host_grey(crop: torch.Tensor) -> np.ndarray:
    """(S, S) uint8 grey of one device crop (uint8 (S, S, 3) BGR), downloaded (a wait)."""
    grey = crop if crop.ndim == 2 else _grey(crop)
    return np.ascontiguousarray(grey.cpu().numpy())


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` on ``device``; on CUDA through pinned memory, so the copy queues without
    waiting (torch's host allocator keeps the pinned block until the copy is done)."""
    import torch

    host = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda" or torch.cuda.is_available():
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def motion_tensors(flow: np.ndarray, weight: np.ndarray,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A motion's flow (H, W, 2) and weight (H, W) on ``device``."""
    return upload(flow, device), upload(weight, device)


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int, device: torch.device,
                stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (xs, ys), float32 (h, w) on ``device``; made once per size
    and stream (never written: every use makes new tensors from them)."""
    import torch

    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return xs, ys


def warp_texture_torch(texture: Any, flow: Any, weight: Any) -> Any:
    """``texture`` (H, W, 3) uint8 or (H, W) float32 tensor, sampled at ``x + flow(x)``
    (``flow`` (H, W, 2) float32, crop pixels) and blended with the plain texture by
    ``weight`` (H, W) in [0, 1]. Same dtype and device out; no host synchronisation."""
    import torch
    import torch.nn.functional as F

    h, w = texture.shape[:2]
    if tuple(flow.shape) != (h, w, 2) or tuple(weight.shape) != (h, w):
        raise ValueError(f"warp_texture_torch: flow {tuple(flow.shape)} / weight "
                         f"{tuple(weight.shape)} do not match the texture {(h, w)}")
    from realtime.frame.streams import stream_key

    xs, ys = _pixel_grid(h, w, texture.device, stream_key())
    # OpenCV's remap samples at 1/32 px (INTER_BITS = 5): the same coordinates here
    sx = torch.round((xs + flow[..., 0]) * 32.0) / 32.0
    sy = torch.round((ys + flow[..., 1]) * 32.0) / 32.0
    gx = sx * (2.0 / max(w - 1, 1)) - 1.0
    gy = sy * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)[None]
    planar = texture.float()
    planar = planar[None, None] if planar.ndim == 2 else planar.permute(2, 0, 1)[None]
    warped = F.grid_sample(planar, grid, mode="bilinear", padding_mode="border",
                           align_corners=True)[0]
    warped = warped[0] if texture.ndim == 2 else warped.permute(1, 2, 0)
    if texture.dtype == torch.uint8:  # OpenCV's remap gives rounded uint8
        warped = torch.floor(warped + 0.5).clamp(0, 255)
    blend = weight if texture.ndim == 2 else weight[..., None]
    out = texture.float() + blend * (warped - texture.float())
    if texture.dtype == torch.uint8:
        return (out + 0.5).clamp(0, 255).to(torch.uint8)
    return out.to(texture.dtype)


def take_live_mouth_torch(texture: torch.Tensor, current: torch.Tensor,
                          weight: np.ndarray) -> torch.Tensor:
    """``texture`` with ``current``'s inner mouth blended in by ``weight`` ((S, S) float32
    host array from ``motion.mouth_weight``), as ``motion.take_live_mouth`` does."""
    import torch

    w = upload(weight, texture.device)[..., None]
    base = texture.to(torch.float32)
    out = base + w * (current.to(torch.float32) - base)
    return (out + 0.5).clamp(0, 255).to(torch.uint8)
