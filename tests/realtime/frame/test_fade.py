"""The cross-fade at a texture change: the new texture's weight rises over the fade,
each texture follows its own flow, masks blend with their crops, the device blend
agrees with the host one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.frame.fade import FadingMotion, cross_fade
from realtime.frame.motion import TextureMotion
from realtime.frame.process import MaskedCrop
from realtime.frame.textures import Texture
from realtime.types import AlignedFace

SIZE = 224
FRAME = 1 / 30


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _aligned(crop: np.ndarray) -> AlignedFace:
    return AlignedFace(crop, np.array([[1.0, 0, 0], [0, 1.0, 0]]), SIZE)


def _flat(value: int, frame: int, track: int = 1) -> Texture:
    crop = np.full((SIZE, SIZE, 3), value, np.uint8)
    return Texture(crop, "s", frame, track, crop)


def test_a_replaced_texture_fades_in_over_the_fade_time() -> None:
    clock = _Clock()
    motion = FadingMotion(0.2, clock=clock)
    old, new = _flat(40, 1), _flat(200, 2)
    now = _aligned(old.crop)
    shown = []
    for k in range(14):
        clock.now = k * FRAME
        texture = old if k < 5 else new
        shown.append(int(motion.follow(1, texture, now, mode="static")[0, 0, 0]))
    assert shown[:5] == [40] * 5
    # from one frame in: 1/6 of the way at 30 fps over 0.2 s, then evenly up
    assert shown[5] == pytest.approx(40 + 160 / 6, abs=1)
    steps = np.diff(shown[5:11])
    assert (steps > 0).all() and steps.max() - steps.min() <= 2
    assert shown[10:] == [200] * 4  # all of the new one after 0.2 s (6 frames)
    assert motion.fades == 1


def test_no_fade_replaces_at_once_and_the_first_texture_is_not_faded() -> None:
    clock = _Clock()
    motion = FadingMotion(0.0, clock=clock)
    first = motion.follow(1, _flat(40, 1), _aligned(_flat(0, 0).crop), mode="static")
    assert int(first[0, 0, 0]) == 40
    clock.now = FRAME
    assert int(motion.follow(1, _flat(200, 2), _aligned(first), mode="static")[0, 0, 0]) == 200
    motion.fade_s = 0.2  # a setting changed: the next change fades
    clock.now = 2 * FRAME
    assert int(motion.follow(1, _flat(100, 3), _aligned(first), mode="static")[0, 0, 0]) < 200
    motion.retain([])
    assert motion.fade_weight(1) is None


def test_the_fade_time_can_come_from_the_settings() -> None:
    seconds = [0.0]
    motion = FadingMotion(lambda: seconds[0])
    assert motion.fade_s == 0.0
    seconds[0] = 0.3
    assert motion.fade_s == 0.3


def test_each_texture_follows_its_own_flow(astronaut_bgr: np.ndarray) -> None:
    """Mid-fade, the shown crop is the blend of the old texture warped from *its* target
    and the new one warped from *its* target to the current crop."""
    face = cv2.resize(astronaut_bgr[30:300, 120:370], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    shifted = cv2.warpAffine(face, np.float32([[1, 0, 3], [0, 1, 0]]), (SIZE, SIZE),
                             borderMode=cv2.BORDER_REPLICATE)
    current = cv2.warpAffine(face, np.float32([[1, 0, 5], [0, 1, 2]]), (SIZE, SIZE),
                             borderMode=cv2.BORDER_REPLICATE)
    old = Texture((face * 0.9).astype(np.uint8), "s", 1, 1, face)
    new = Texture((shifted * 0.7).astype(np.uint8), "s", 2, 1, shifted)
    clock = _Clock()
    motion = FadingMotion(0.2, clock=clock)
    motion.follow(1, old, _aligned(current), mode="flow")
    clock.now = FRAME
    got = motion.follow(1, new, _aligned(current), mode="flow")
    weight = motion.fade_weight(1)
    assert weight is not None and 0.1 < weight < 0.5
    plain = TextureMotion()
    # the texture fading out follows its flow one way only (half the DIS work)
    expected = cross_fade(plain.follow(1, old, _aligned(current), mode="flow", outgoing=True),
                          plain.follow(1, new, _aligned(current), mode="flow"), weight)
    assert np.abs(got.astype(int) - expected).max() <= 1
    # the misfit the refresh order reads is the shown (new) texture's, not the old one's
    assert motion.unexplained[1][0] is new
    # the old texture warped with the new one's flow would differ
    wrong = cross_fade(plain.follow(1, Texture(old.crop, "s", 1, 1, shifted),
                                    _aligned(current), mode="flow"),
                       plain.follow(1, new, _aligned(current), mode="flow"), weight)
    assert np.abs(wrong.astype(int) - got).mean() > 1.0


def test_masked_crops_blend_crop_and_mask_and_unlike_crops_are_not_blended() -> None:
    a = MaskedCrop(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32))
    b = MaskedCrop(np.full((8, 8, 3), 100, np.uint8), np.ones((8, 8), np.float32))
    mixed = cross_fade(a, b, 0.25)
    assert isinstance(mixed, MaskedCrop)
    assert int(mixed.crop[0, 0, 0]) == 25 and mixed.mask[0, 0] == pytest.approx(0.25)
    larger = np.zeros((16, 16, 3), np.uint8)  # an enhanced crop beside a plain one
    assert cross_fade(larger, b.crop, 0.5) is b.crop
    assert cross_fade(a.crop, b, 0.5) is b  # a masked and a plain one


def test_the_device_blend_agrees_with_the_host_one() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2))
    mask_a, mask_b = (rng.random((SIZE, SIZE), dtype=np.float32) for _ in range(2))
    host = cross_fade(MaskedCrop(a, mask_a), MaskedCrop(b, mask_b), 0.3)
    dev = cross_fade(MaskedCrop(torch.from_numpy(a), torch.from_numpy(mask_a)),
                     MaskedCrop(torch.from_numpy(b), torch.from_numpy(mask_b)), 0.3)
    assert isinstance(dev.crop, torch.Tensor) and dev.crop.dtype == torch.uint8
    assert np.abs(dev.crop.numpy().astype(int) - host.crop).max() <= 1
    assert np.abs(dev.mask.numpy() - host.mask).max() < 1e-6


def test_the_device_path_fades_tensors_with_their_own_flows(astronaut_bgr: np.ndarray) -> None:
    """Device textures (torch, CPU device) mid-fade: tensors out, within one grey level
    of the host fade of the same textures."""
    torch = pytest.importorskip("torch")
    from realtime.frame.process_torch import DeviceAlignedFace

    face = cv2.resize(astronaut_bgr[30:300, 120:370], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    current = cv2.warpAffine(face, np.float32([[1, 0, 4], [0, 1, 1]]), (SIZE, SIZE),
                             borderMode=cv2.BORDER_REPLICATE)
    old_crop, new_crop = (face * 0.9).astype(np.uint8), (face * 0.6).astype(np.uint8)
    results = []
    for device in (False, True):
        wrap = torch.from_numpy if device else (lambda a: a)
        old = Texture(wrap(old_crop), "s", 1, 1, wrap(face))
        new = Texture(wrap(new_crop), "s", 2, 1, wrap(face))
        now = DeviceAlignedFace(torch.from_numpy(current), np.eye(2, 3), SIZE) if device \
            else _aligned(current)
        clock = _Clock()
        motion = FadingMotion(0.2, clock=clock)
        motion.follow(1, old, now, mode="flow")
        clock.now = 2 * FRAME
        results.append(motion.follow(1, new, now, mode="flow"))
    host, dev = results
    assert isinstance(dev, torch.Tensor) and dev.dtype == torch.uint8
    assert np.abs(dev.numpy().astype(int) - host).max() <= 1
    assert 0.55 * face.mean() < float(host.mean()) < 0.9 * face.mean()  # a blend of both
