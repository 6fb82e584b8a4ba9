"""The parsing mask's pure maths against SimSwap's official formula.

The reference below is written from the official ``SoftErosion`` and
``reverse2wholeimage`` (util/reverse2original.py) with torch ops, independently of
``realtime.frame.masks`` (which uses OpenCV on the host); the golden numbers were produced
by running the official ``SoftErosion`` class itself (neuralchen/SimSwap commit
bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780, CPU) on ``_golden_input()``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime.frame.masks import (
    FACE_CLASSES,
    KEPT_CLASSES,
    MEAN,
    MIN_FACE_PIXELS,
    MOUTH_CLASS,
    STD,
    erosion_kernel,
    face_mask,
    kept_pixels,
    masks_from_logits,
    masks_from_logits_torch,
    parser_input,
    parser_input_torch,
    soft_erode,
    soft_erode_torch,
)
from realtime.types import ValueTypeError


def reference_soft_erosion(mask: np.ndarray, kernel_size: int = 17, threshold: float = 0.9,
                           iterations: int = 7) -> np.ndarray:
    """SimSwap's SoftErosion, written from its definition with torch conv2d."""
    r = kernel_size // 2
    ys, xs = torch.meshgrid(torch.arange(0.0, kernel_size), torch.arange(0.0, kernel_size),
                            indexing="ij")
    dist = torch.sqrt((xs - r) ** 2 + (ys - r) ** 2)
    weight = dist.max() - dist
    weight = (weight / weight.sum())[None, None]
    x = torch.from_numpy(np.asarray(mask, np.float32))[None, None]
    for _ in range(iterations - 1):
        x = torch.min(x, F.conv2d(x, weight, padding=r))
    x = F.conv2d(x, weight, padding=r)
    hard = x >= threshold
    out = x.clone()
    out[hard] = 1.0
    out[~hard] = x[~hard] / x[~hard].max()
    return out[0, 0].numpy()


def reference_mask(classes512: np.ndarray, crop_size: int) -> np.ndarray:
    """The official mask path: 0/255 face and mouth maps, resized, /255, summed, eroded."""
    face = np.zeros(classes512.shape, np.float64)
    mouth = np.zeros(classes512.shape, np.float64)
    for c in (1, 2, 3, 4, 5, 6, 10, 12, 13):
        face[classes512 == c] = 255
    mouth[classes512 == 11] = 255
    both = cv2.resize(np.stack([face, mouth], axis=2), (crop_size, crop_size))
    return reference_soft_erosion((both[..., 0] + both[..., 1]) / 255.0)


def _golden_input() -> np.ndarray:
    m = np.zeros((512, 512), np.float64)
    cv2.ellipse(m, (256, 270), (150, 190), 0, 0, 360, 255, -1)
    cv2.ellipse(m, (256, 400), (60, 25), 0, 0, 360, 0, -1)  # a hole: a hand over the chin
    return cv2.resize(m, (224, 224)) / 255.0


# (row, column) → the official SoftErosion's output on _golden_input()
GOLDEN = {(112, 118): 1.0, (30, 118): 0.042823515832424164, (40, 118): 0.5066028833389282,
          (45, 118): 0.778834879398346, (50, 118): 0.9552559852600098, (175, 112): 0.0,
          (165, 112): 0.18328696489334106, (190, 112): 0.2638191878795624, (112, 30): 0.0}
GOLDEN_SUM = 13545.24609375
GOLDEN_HARD = 8443  # pixels at or above the threshold


def _class_map(seed: int, size: int = 512) -> np.ndarray:
    """A face-like class map: skin ellipse with eyes, brows, nose, lips, mouth, hair."""
    rng = np.random.default_rng(seed)
    classes = np.zeros((size, size), np.uint8)
    k = size / 512
    jitter = rng.integers(-20, 20, 2)
    cx, cy = int(256 * k + jitter[0]), int(270 * k + jitter[1])
    cv2.ellipse(classes, (cx, cy - int(60 * k)), (int(190 * k), int(230 * k)), 0, 0, 360, 17, -1)
    cv2.ellipse(classes, (cx, cy), (int(150 * k), int(190 * k)), 0, 0, 360, 1, -1)
    for dx, eye, brow in ((-60, 4, 2), (60, 5, 3)):
        cv2.ellipse(classes, (cx + int(dx * k), cy - int(40 * k)), (int(25 * k), int(10 * k)),
                    0, 0, 360, eye, -1)
        cv2.ellipse(classes, (cx + int(dx * k), cy - int(75 * k)), (int(35 * k), int(8 * k)),
                    0, 0, 360, brow, -1)
    cv2.ellipse(classes, (cx, cy + int(20 * k)), (int(20 * k), int(40 * k)), 0, 0, 360, 10, -1)
    cv2.ellipse(classes, (cx, cy + int(95 * k)), (int(55 * k), int(12 * k)), 0, 0, 360, 12, -1)
    cv2.ellipse(classes, (cx, cy + int(120 * k)), (int(55 * k), int(12 * k)), 0, 0, 360, 13, -1)
    cv2.ellipse(classes, (cx, cy + int(108 * k)), (int(45 * k), int(6 * k)), 0, 0, 360, 11, -1)
    cv2.rectangle(classes, (0, int(470 * k)), (size - 1, size - 1), 14, -1)  # neck: not kept
    return classes


def test_class_set_is_simswaps() -> None:
    assert FACE_CLASSES == (1, 2, 3, 4, 5, 6, 10, 12, 13)
    assert MOUTH_CLASS == 11
    assert sorted(KEPT_CLASSES) == [1, 2, 3, 4, 5, 6, 10, 11, 12, 13]
    classes = np.arange(19, dtype=np.uint8).reshape(1, 19)
    kept = kept_pixels(classes)[0]
    assert [c for c in range(19) if kept[c] == 1.0] == sorted(KEPT_CLASSES)
    assert set(np.unique(kept)) == {0.0, 1.0}


def test_kernel_is_radial_and_normalised() -> None:
    kernel = erosion_kernel(17)
    assert kernel.shape == (17, 17) and kernel.dtype == np.float32
    assert abs(float(kernel.sum()) - 1.0) < 1e-6
    assert kernel[8, 8] == kernel.max() and kernel[0, 0] == 0.0  # max(dist) is the corner
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    assert not kernel.flags.writeable


def test_soft_erosion_equals_the_official_class_golden_numbers() -> None:
    got = soft_erode(_golden_input())
    for (row, col), value in GOLDEN.items():
        assert got[row, col] == pytest.approx(value, abs=2e-6), (row, col)
    assert float(got.sum()) == pytest.approx(GOLDEN_SUM, abs=2.0)
    assert abs(int((got >= 1.0).sum()) - GOLDEN_HARD) <= 2  # float rounding at 0.9
    device = soft_erode_torch(torch.from_numpy(_golden_input()).float()[None])[0].numpy()
    for (row, col), value in GOLDEN.items():
        assert device[row, col] == pytest.approx(value, abs=2e-6), (row, col)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_erosion_equals_the_reference_formula(seed: int) -> None:
    classes = _class_map(seed)
    kept = cv2.resize(kept_pixels(classes), (112, 112))  # the formula is size-free; small is fast
    if seed == 2:  # a ragged mask: random holes and specks
        rng = np.random.default_rng(seed)
        kept = np.clip(kept + (rng.random(kept.shape) > 0.97) - (rng.random(kept.shape) > 0.9),
                       0, 1).astype(np.float32)
    expected = reference_soft_erosion(kept)
    host = soft_erode(kept)
    device = soft_erode_torch(torch.from_numpy(kept)[None])[0].numpy()
    for got in (host, device):
        diff = np.abs(got - expected)
        # a pixel within float rounding of 0.9 may land on the other side of the threshold
        # (1 instead of ~0.9/max ≈ 1): a handful at most, each off by less than 0.01
        assert (diff > 1e-5).sum() <= 3 and diff.max() < 0.01
    assert host.min() >= 0.0 and host.max() == 1.0


def test_parameters_change_the_result() -> None:
    """A mutation check: each of kernel size, threshold and iterations matters."""
    kept = cv2.resize(kept_pixels(_class_map(0)), (112, 112))
    base = soft_erode(kept)
    for kwargs in ({"kernel_size": 15}, {"threshold": 0.6}, {"iterations": 1}):
        other = soft_erode(kept, **kwargs)  # type: ignore[arg-type]
        np.testing.assert_allclose(other, reference_soft_erosion(kept, **kwargs), atol=0.01)
        assert np.abs(other - base).max() > 0.05, kwargs


@pytest.mark.parametrize("crop_size", [224, 128])
def test_face_mask_equals_the_official_path(crop_size: int) -> None:
    classes = _class_map(3)
    got = face_mask(classes, crop_size)
    assert got is not None and got.shape == (crop_size, crop_size)
    expected = reference_mask(classes, crop_size)
    diff = np.abs(got - expected)
    assert (diff > 1e-4).sum() <= 3 and diff.max() < 0.01
    # hair and neck are out, the cheeks in
    assert got[crop_size // 2, crop_size // 2] == 1.0
    assert got[crop_size - 2, crop_size // 2] < 1e-6  # blur sums leave float dust


def test_too_few_face_pixels_means_no_mask() -> None:
    classes = np.full((512, 512), 17, np.uint8)  # all hair
    assert face_mask(classes, 224) is None
    classes.reshape(-1)[: MIN_FACE_PIXELS - 1] = 1
    assert face_mask(classes, 224) is None
    classes.reshape(-1)[MIN_FACE_PIXELS - 1] = 11
    assert face_mask(classes, 224) is not None  # 20 pixels: the official sum 5100 >= 5000


def test_parser_input_equals_normalise_then_nearest_upsample(astronaut_bgr: np.ndarray) -> None:
    crops = [np.ascontiguousarray(astronaut_bgr[40:264, 150:374]),
             np.ascontiguousarray(astronaut_bgr[0:224, 0:224])]
    got = parser_input(crops)
    assert got.shape == (2, 3, 512, 512) and got.dtype == np.float32
    rgb = torch.from_numpy(np.stack(crops)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(MEAN)[None, :, None, None]
    std = torch.tensor(STD)[None, :, None, None]
    expected = F.interpolate((rgb - mean) / std, size=(512, 512)).numpy()  # official: nearest
    np.testing.assert_allclose(got, expected, atol=1e-6)
    device = parser_input_torch(torch.from_numpy(np.stack(crops))).numpy()
    np.testing.assert_allclose(device, expected, atol=1e-6)
    with pytest.raises(ValueTypeError):
        parser_input([crops[0], crops[0][:100]])


def test_logits_to_masks_host_and_device_agree() -> None:
    rng = np.random.default_rng(5)
    classes = np.stack([_class_map(6), np.full((512, 512), 17, np.uint8)])
    logits = rng.normal(size=(2, 19, 512, 512)).astype(np.float32)
    one_hot = np.eye(19, dtype=np.float32)[classes].transpose(0, 3, 1, 2)
    logits += 10 * one_hot  # argmax is the class map
    host = masks_from_logits(logits, 224)
    assert host[1] is None and host[0] is not None
    np.testing.assert_allclose(host[0], reference_mask(classes[0], 224), atol=0.01)
    masks, found = masks_from_logits_torch(torch.from_numpy(logits), 224)
    assert found.tolist() == [True, False]
    diff = np.abs(masks[0].numpy() - host[0])
    assert (diff > 1e-4).sum() <= 3 and diff.max() < 0.01
    with pytest.raises(ValueTypeError):
        masks_from_logits(logits[:, :18], 224)
