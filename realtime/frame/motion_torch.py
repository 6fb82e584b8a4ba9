"""The texture warp of :mod:`realtime.frame.motion` on a torch device (the GPU path):
``grid_sample`` with OpenCV ``remap``'s sampling convention (pixel centres at integer
coordinates, coordinates rounded to 1/32 px, borders replicated), then the same blend
with the plain texture. Agrees with the OpenCV path within one grey level."""

from __future__ import annotations

from typing import Any


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
    device = texture.device
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
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
