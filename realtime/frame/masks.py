"""The face-parsing mask SimSwap blends with (pure functions, numpy/OpenCV and torch).

SimSwap's best results (its ``--use_mask``) take from the generator only the parts of the
target face that a BiSeNet parser labels as face: skin, brows, eyes, glasses, nose and
lips, plus the inner mouth. Hair, ears, neck, background and anything in front of the
face keep the target's own pixels. The steps, as the official inference code does them:

1. the target crop, RGB in [0, 1], ImageNet mean/std normalised, upsampled to 512 × 512
   with nearest-neighbour sampling (``parser_input``);
2. the parser's class map (argmax of its 19 logits), the kept classes set to 1
   (``kept_pixels``), resized to the crop size with bilinear interpolation; a map with
   fewer than ``MIN_FACE_PIXELS`` kept pixels means "no face found" and the face falls
   back to the box mask (``face_mask``);
3. a soft erosion (``soft_erode``): a radial 17 × 17 kernel (weights ``max(dist) - dist``,
   summing to 1), six passes of ``x = min(x, kernel * x)`` and a final ``kernel * x`` with
   zero padding; values ≥ 0.9 become 1, the rest are divided by their own maximum.

Facts from SimSwap's ``util/reverse2original.py`` and the CelebAMask-HQ label order the
parser was trained on; the code is this project's own. The torch functions compute the
same on any device without a host round trip (the GPU frame path).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realtime.types import ValueTypeError

if TYPE_CHECKING:
    import torch

# CelebAMask-HQ labels (face-parsing.PyTorch): 0 background, 1 skin, 2/3 left/right brow,
# 4/5 left/right eye, 6 eyeglasses, 7/8 ears, 9 earring, 10 nose, 11 inner mouth,
# 12/13 upper/lower lip, 14 neck, 15 necklace, 16 cloth, 17 hair, 18 hat.
FACE_CLASSES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 10, 12, 13)
MOUTH_CLASS = 11
KEPT_CLASSES: tuple[int, ...] = (*FACE_CLASSES, MOUTH_CLASS)
N_CLASSES = 19
PARSE_SIZE = 512
# torchvision's ImageNet statistics, what SimSwap normalises the crop with before parsing.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# The official code parses only when the two 0/255 class maps sum to >= 5000, that is
# at least 20 kept pixels at 512 × 512; below that it pastes the whole crop.
MIN_FACE_PIXELS = 20
# SoftErosion(kernel_size=17, threshold=0.9, iterations=7), in crop pixels.
EROSION_KERNEL = 17
EROSION_THRESHOLD = 0.9
EROSION_ITERATIONS = 7


def upsample_indices(size: int, out: int = PARSE_SIZE) -> np.ndarray:
    """Source index of each of ``out`` samples for torch's default ``nearest``
    interpolation from ``size``: ``floor(i * size / out)`` (exact in integers)."""
    if size < 1 or out < 1:
        raise ValueError(f"sizes: expected >= 1, got {size} → {out}")
    return (np.arange(out, dtype=np.int64) * size) // out


def parser_input(crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 (S, S, 3) crops → float32 [N, 3, 512, 512]: RGB in [0, 1], mean/std
    normalised, nearest-upsampled (the normalisation is per pixel, so upsampling first
    gives the same values as the official normalise-then-interpolate)."""
    if not crops:
        return np.zeros((0, 3, PARSE_SIZE, PARSE_SIZE), np.float32)
    size = crops[0].shape[0]
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.shape != (size, size, 3):
            raise ValueTypeError(f"crop {i}: expected uint8 ({size}, {size}, 3), got "
                                 f"{crop.dtype} {crop.shape}")
    index = upsample_indices(size)
    stack = np.stack(crops)[:, index][:, :, index][..., ::-1]  # N, 512, 512, RGB
    mean = np.asarray(MEAN, np.float32)
    std = np.asarray(STD, np.float32)
    values = (stack.astype(np.float32) / np.float32(255.0) - mean) / std
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2))


def kept_pixels(classes: np.ndarray) -> np.ndarray:
    """float32 map: 1 where the class is one SimSwap takes from the generator, else 0."""
    return np.isin(classes, KEPT_CLASSES).astype(np.float32)


@functools.lru_cache(maxsize=4)
def erosion_kernel(size: int = EROSION_KERNEL) -> np.ndarray:
    """float32 (size, size) radial kernel: ``max(dist) - dist`` from the centre pixel
    (``size // 2``), normalised to sum 1. Read-only, cached."""
    if size < 1:
        raise ValueError(f"kernel size: expected >= 1, got {size}")
    r = size // 2
    grid = np.arange(size, dtype=np.float32) - np.float32(r)
    dist = np.sqrt(grid[None, :] ** 2 + grid[:, None] ** 2)
    kernel = dist.max() - dist
    kernel = (kernel / kernel.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def _normalise_soft(x: np.ndarray, threshold: float) -> np.ndarray:
    hard = x >= threshold
    rest = x[~hard]
    peak = float(rest.max()) if rest.size else 0.0
    out = x / peak if peak > 0 else np.zeros_like(x)  # official: 0/0 (NaN); here 0
    out[hard] = 1.0
    # filter2D's DFT path leaves rounding residues around 0 (-1e-16) where the mask is empty
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def soft_erode(mask: np.ndarray, *, kernel_size: int = EROSION_KERNEL,
               threshold: float = EROSION_THRESHOLD,
               iterations: int = EROSION_ITERATIONS) -> np.ndarray:
    """SimSwap's soft erosion of a float (H, W) mask in [0, 1]; returns float32 (H, W).

    ``iterations - 1`` passes of ``min(x, kernel * x)`` then one ``kernel * x``, all with
    zero padding (the mask fades at the crop edge); values ≥ ``threshold`` → 1, the
    others divided by their maximum.
    """
    if mask.ndim != 2:
        raise ValueTypeError(f"mask: expected (H, W), got {mask.shape}")
    if iterations < 1:
        raise ValueError(f"iterations: expected >= 1, got {iterations}")
    kernel = erosion_kernel(kernel_size)
    x = np.asarray(mask, dtype=np.float32)

    def smooth(values: np.ndarray) -> np.ndarray:
        # The kernel is symmetric, so correlation (filter2D) equals convolution.
        return cv2.filter2D(values, cv2.CV_32F, kernel, borderType=cv2.BORDER_CONSTANT)

    for _ in range(iterations - 1):
        x = np.minimum(x, smooth(x))
    return _normalise_soft(smooth(x), threshold)


def face_mask(classes: np.ndarray, crop_size: int) -> np.ndarray | None:
    """The soft face mask for one crop from the parser's (512, 512) class map: float32
    (crop_size, crop_size) in [0, 1], or ``None`` when fewer than ``MIN_FACE_PIXELS`` are
    face (the official code then pastes the whole crop)."""
    if classes.ndim != 2:
        raise ValueTypeError(f"classes: expected (H, W), got {classes.shape}")
    kept = kept_pixels(classes)
    if int(kept.sum()) < MIN_FACE_PIXELS:
        return None
    if kept.shape != (crop_size, crop_size):
        kept = cv2.resize(kept, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    return soft_erode(kept)


def masks_from_logits(logits: np.ndarray, crop_size: int) -> list[np.ndarray | None]:
    """``face_mask`` of each of N parser outputs [N, 19, H, W]."""
    if logits.ndim != 4 or logits.shape[1] != N_CLASSES:
        raise ValueTypeError(f"parser output: expected [N, {N_CLASSES}, H, W], got "
                             f"{logits.shape}")
    return [face_mask(np.argmax(item, axis=0), crop_size) for item in logits]


# ---------------------------------------------------------------------------- torch
# The constants the torch path needs, uploaded once per device (and crop size): an upload
# from pageable memory is a blocking copy on CUDA, which waits for whatever the GPU runs
# (the swap); per frame that made 5 host synchronisations with the parsing mask.
@functools.lru_cache(maxsize=16)
def _index_t(size: int, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(upsample_indices(size)).to(device)


@functools.lru_cache(maxsize=4)
def _mean_std_t(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    return (torch.tensor(MEAN, dtype=torch.float32, device=device),
            torch.tensor(STD, dtype=torch.float32, device=device))


@functools.lru_cache(maxsize=4)
def _kept_ids_t(device: torch.device) -> torch.Tensor:
    import torch

    return torch.tensor(KEPT_CLASSES, device=device)


@functools.lru_cache(maxsize=8)
def _erosion_weight_t(kernel_size: int, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.array(erosion_kernel(kernel_size))).to(device)[None, None]


def parser_input_torch(crops: torch.Tensor) -> torch.Tensor:
    """``parser_input`` on the device: uint8 [N, S, S, 3] BGR → float32 [N, 3, 512, 512]."""
    import torch

    if crops.dtype != torch.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueTypeError(f"crops: expected uint8 [N, S, S, 3], got {crops.dtype} "
                             f"{tuple(crops.shape)}")
    size = int(crops.shape[1])
    index = _index_t(size, crops.device)
    rgb = crops.index_select(1, index).index_select(2, index).flip(-1)
    mean, std = _mean_std_t(crops.device)
    values = (rgb.to(torch.float32) / 255.0 - mean) / std
    return values.permute(0, 3, 1, 2).contiguous()


def soft_erode_torch(mask: torch.Tensor, *, kernel_size: int = EROSION_KERNEL,
                     threshold: float = EROSION_THRESHOLD,
                     iterations: int = EROSION_ITERATIONS) -> torch.Tensor:
    """``soft_erode`` of float masks [N, H, W] on their device, each normalised by its
    own maximum; no host synchronisation (no branch on a device value)."""
    import torch
    import torch.nn.functional as F

    if mask.ndim != 3:
        raise ValueTypeError(f"mask: expected [N, H, W], got {tuple(mask.shape)}")
    if iterations < 1:
        raise ValueError(f"iterations: expected >= 1, got {iterations}")
    weight = _erosion_weight_t(kernel_size, mask.device)
    pad = kernel_size // 2
    x = mask.to(torch.float32)[:, None]
    for _ in range(iterations - 1):
        x = torch.minimum(x, F.conv2d(x, weight, padding=pad))
    x = F.conv2d(x, weight, padding=pad)[:, 0]
    hard = x >= threshold
    peak = torch.where(hard, torch.zeros_like(x), x).amax(dim=(1, 2), keepdim=True)
    soft = torch.where(peak > 0, x / peak.clamp_min(1e-12), torch.zeros_like(x))
    return torch.where(hard, torch.ones_like(x), soft)


def masks_from_logits_torch(logits: torch.Tensor,
                            crop_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``masks_from_logits`` on the device: (masks float32 [N, S, S], found bool [N]).
    Where ``found`` is false (too few face pixels) the caller uses the box mask alone."""
    import torch
    import torch.nn.functional as F

    if logits.ndim != 4 or logits.shape[1] != N_CLASSES:
        raise ValueTypeError(f"parser output: expected [N, {N_CLASSES}, H, W], got "
                             f"{tuple(logits.shape)}")
    classes = logits.argmax(dim=1)
    kept = torch.isin(classes, _kept_ids_t(logits.device)).to(torch.float32)
    found = kept.sum(dim=(1, 2)) >= MIN_FACE_PIXELS
    if tuple(kept.shape[1:]) != (crop_size, crop_size):
        # OpenCV's INTER_LINEAR resize: half-pixel centres, no antialiasing.
        kept = F.interpolate(kept[:, None], size=(crop_size, crop_size), mode="bilinear",
                             align_corners=False, antialias=False)[:, 0]
    return soft_erode_torch(kept), found
