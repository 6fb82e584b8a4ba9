"""The flow texture: a known motion is undone (direction and units), the flow is per
track and reset by a new texture, static mode is the plain texture, a flow that cannot
be used falls back (counted), and the torch warp agrees with OpenCV's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.frame import motion as motion_module
from realtime.frame.motion import (
    Motion,
    TextureMotion,
    estimate_motion,
    flow_grey,
    mouth_weight,
    texture_mode_in_effect,
    warp_texture,
)
from realtime.frame.process import MaskedCrop
from realtime.frame.textures import Texture
from realtime.types import AlignedFace

SIZE = 224


@pytest.fixture(scope="module")
def face_crop(astronaut_bgr: np.ndarray) -> np.ndarray:
    """A real face, roughly aligned: the astronaut's face region at 224 px."""
    return cv2.resize(astronaut_bgr[30:300, 120:370], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _bulge(image: np.ndarray, centre: tuple[float, float], push: tuple[float, float],
           radius: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a smooth local displacement (a jaw/brow-like motion): returns the
    moved image and the true flow f with moved(x) = image(x + f(x))."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    fall = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * radius**2))
    flow = np.stack([-push[0] * fall, -push[1] * fall], axis=-1).astype(np.float32)
    moved = cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    return moved, flow


def _aligned(crop: np.ndarray) -> AlignedFace:
    return AlignedFace(crop, np.array([[1.0, 0, 0], [0, 1.0, 0]]), SIZE)


def test_auto_is_flow_only_when_asynchronous() -> None:
    assert texture_mode_in_effect("auto", asynchronous=True) == "flow"
    assert texture_mode_in_effect("auto", asynchronous=False) == "static"
    assert texture_mode_in_effect("static", asynchronous=True) == "static"
    assert texture_mode_in_effect("flow", asynchronous=False) == "flow"
    with pytest.raises(ValueError, match="texture"):
        texture_mode_in_effect("warp", asynchronous=True)


def test_a_known_motion_is_undone(face_crop: np.ndarray) -> None:
    """The current crop is the reference with the mouth region pushed down 6 px and a
    whole-face shift of 2 px: the warped texture (here the reference itself) matches the
    current crop far better than the plain one, and the estimated flow points the way
    the true flow does, in crop pixels."""
    moved, true_flow = _bulge(face_crop, (112, 170), (0.0, 6.0), 30.0)
    shift = np.float32([[1, 0, 2.0], [0, 1, 0]])
    current = cv2.warpAffine(moved, shift, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)
    found = estimate_motion(flow_grey(face_crop), flow_grey(current), SIZE)
    assert found is not None and found.flow.shape == (SIZE, SIZE, 2)
    inner = (slice(40, 184), slice(40, 184))
    static_error = np.abs(face_crop[inner].astype(float) - current[inner]).mean()
    warped = warp_texture(face_crop, found)
    flow_error = np.abs(warped[inner].astype(float) - current[inner]).mean()
    assert flow_error < 0.5 * static_error, (flow_error, static_error)
    # direction and units where the motion is: the mouth moved down by ~6 px, so the
    # current pixel samples the reference ~6 px *above* (flow y ≈ -6 there)
    assert -8.0 < float(np.median(found.flow[160:180, 100:124, 1])) < -3.5
    assert 1.0 < -float(np.median(found.flow[60:90, 60:160, 0])) < 3.0  # the 2 px shift
    # the wrong sign would make it worse than static
    wrong = warp_texture(face_crop, Motion(-found.flow, found.weight))
    assert np.abs(wrong[inner].astype(float) - current[inner]).mean() > flow_error
    del true_flow


def test_the_warp_blends_back_where_the_flow_is_unreliable(face_crop: np.ndarray) -> None:
    flow = np.full((SIZE, SIZE, 2), 5.0, np.float32)
    weight = np.zeros((SIZE, SIZE), np.float32)
    weight[:, SIZE // 2:] = 1.0
    out = warp_texture(face_crop, Motion(flow, weight))
    assert np.array_equal(out[:, : SIZE // 2], face_crop[:, : SIZE // 2])
    assert not np.array_equal(out[:, SIZE // 2:], face_crop[:, SIZE // 2:])
    with pytest.raises(ValueError, match="does not match"):
        warp_texture(face_crop[:100, :100], Motion(flow, weight))


def test_static_mode_is_the_plain_texture_object(face_crop: np.ndarray) -> None:
    texture = Texture(face_crop.copy(), "s", 1, 7, face_crop)
    assert TextureMotion().follow(7, texture, _aligned(face_crop), mode="static") is texture.crop


def test_flow_is_per_track_and_a_new_texture_resets_it(face_crop: np.ndarray) -> None:
    current, _ = _bulge(face_crop, (112, 170), (0.0, 5.0), 30.0)
    motion = TextureMotion()
    mine = Texture(face_crop.copy(), "s", 1, 7, face_crop)
    # another person's texture (a face new to the tracker) is never warped with this
    # face's motion
    assert motion.follow(8, mine, _aligned(current), mode="flow") is mine.crop
    warped = motion.follow(7, mine, _aligned(current), mode="flow")
    assert not np.array_equal(warped, mine.crop)
    # a new texture swapped from the current crop: nothing moved since, nothing warps
    fresh = Texture(current.copy(), "s", 2, 7, current)
    again = motion.follow(7, fresh, _aligned(current), mode="flow")
    assert np.abs(again.astype(int) - current).max() <= 2
    motion.retain([8])
    assert 7 not in motion._refs and 7 not in motion.unexplained


def test_masked_crops_warp_crop_and_mask_together(face_crop: np.ndarray) -> None:
    current, _ = _bulge(face_crop, (112, 170), (0.0, 6.0), 30.0)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[150:190, 80:144] = 1.0
    texture = Texture(MaskedCrop(face_crop.copy(), mask), "s", 1, 3, face_crop)
    out = TextureMotion().follow(3, texture, _aligned(current), mode="flow")
    assert isinstance(out, MaskedCrop) and out.mask.dtype == np.float32
    assert not np.array_equal(out.mask, mask)  # the mask moved with the mouth
    assert out.mask[190:196, 100:124].mean() > mask[190:196, 100:124].mean()


class _NanFlow:
    def calc(self, a: np.ndarray, b: np.ndarray, flow: object) -> np.ndarray:
        return np.full((*a.shape, 2), np.nan, np.float32)


def test_a_nan_flow_falls_back_to_the_plain_texture_and_is_counted(
        face_crop: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(motion_module._local, "dis", _NanFlow(), raising=False)
    motion = TextureMotion()
    texture = Texture(face_crop.copy(), "s", 1, 4, face_crop)
    assert motion.follow(4, texture, _aligned(face_crop), mode="flow") is texture.crop
    assert motion.fallbacks == 1
    empty = np.zeros((0, 0), np.uint8)
    assert estimate_motion(empty, empty, SIZE) is None


def test_live_mouth_takes_the_current_mouth(face_crop: np.ndarray) -> None:
    corners = np.array([[85.0, 160.0], [139.0, 160.0]])
    weight = mouth_weight(SIZE, corners)
    assert weight[166, 112] > 0.9 and weight[40, 40] == 0.0 and weight[100, 112] < 0.05
    current = face_crop.copy()
    current[150:185, 90:134] = (20, 20, 160)  # an open mouth, red inside
    landmarks = np.array([[80, 100], [144, 100], [112, 130], [85, 160], [139, 160]], float)
    texture = Texture(face_crop.copy(), "s", 1, 2, face_crop)
    out = TextureMotion().follow(2, texture, _aligned(current), mode="static",
                                 live_mouth=True, landmarks=landmarks)
    assert np.abs(out[165, 112].astype(int) - (20, 20, 160)).max() < 10
    assert np.array_equal(out[40:60, 40:60], face_crop[40:60, 40:60])


def test_the_torch_warp_agrees_with_opencv_within_one_grey_level(face_crop: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from realtime.frame.motion_torch import warp_texture_torch

    current, _ = _bulge(face_crop, (112, 170), (1.5, 6.0), 30.0)
    found = estimate_motion(flow_grey(face_crop), flow_grey(current), SIZE)
    assert found is not None
    expected = warp_texture(face_crop, found)
    got = warp_texture_torch(torch.from_numpy(face_crop), torch.from_numpy(found.flow),
                             torch.from_numpy(found.weight)).numpy()
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1
    mask = (face_crop[..., 0] / 255.0).astype(np.float32)
    got_mask = warp_texture_torch(torch.from_numpy(mask), torch.from_numpy(found.flow),
                                  torch.from_numpy(found.weight)).numpy()
    assert np.abs(got_mask - warp_texture(mask, found)).max() < 1 / 255


# -- the device path (DeviceAlignedFace and tensor textures, on torch's CPU device) --------

def test_the_device_grey_is_opencvs_bit_for_bit(face_crop: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from realtime.frame.motion_torch import host_grey

    noise = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    for crop in (face_crop, noise):
        assert np.array_equal(host_grey(torch.from_numpy(crop)),
                              cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))


def _device(crop: np.ndarray) -> object:
    import torch

    from realtime.frame.process_torch import DeviceAlignedFace

    return DeviceAlignedFace(torch.from_numpy(crop.copy()), np.array([[1.0, 0, 0],
                                                                      [0, 1.0, 0]]), SIZE)


def test_the_device_flow_texture_agrees_with_the_host_one(face_crop: np.ndarray) -> None:
    """Same texture, same motion: the device follow (tensors in, tensors out) equals the
    host follow within one grey level, for the crop, its mask and the live mouth."""
    torch = pytest.importorskip("torch")

    current, _ = _bulge(face_crop, (112, 170), (1.0, 6.0), 30.0)
    swapped = (face_crop * 0.8).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[150:190, 80:144] = 1.0
    landmarks = np.array([[80, 100], [144, 100], [112, 130], [85, 160], [139, 160]], float)
    host_tex = Texture(MaskedCrop(swapped, mask), "s", 1, 3, face_crop)
    dev_tex = Texture(MaskedCrop(torch.from_numpy(swapped), torch.from_numpy(mask)), "s", 1, 3,
                      torch.from_numpy(face_crop))
    for live_mouth in (False, True):
        host = TextureMotion().follow(3, host_tex, _aligned(current), mode="flow",
                                      live_mouth=live_mouth, landmarks=landmarks)
        dev_motion = TextureMotion()
        dev = dev_motion.follow(3, dev_tex, _device(current), mode="flow",
                                live_mouth=live_mouth, landmarks=landmarks)
        assert isinstance(dev, MaskedCrop) and isinstance(dev.crop, torch.Tensor)
        assert dev.crop.dtype == torch.uint8 and dev.mask.dtype == torch.float32
        assert not np.array_equal(dev.crop.numpy(), swapped)  # it did move
        assert np.abs(dev.crop.numpy().astype(int) - host.crop).max() <= 1
        assert np.abs(dev.mask.numpy() - host.mask).max() < 1 / 255
        assert dev_motion.fallbacks == 0


def test_the_device_path_keeps_the_per_track_and_size_rules(face_crop: np.ndarray) -> None:
    torch = pytest.importorskip("torch")

    current, _ = _bulge(face_crop, (112, 170), (0.0, 5.0), 30.0)
    texture = Texture(torch.from_numpy(face_crop.copy()), "s", 1, 7, torch.from_numpy(face_crop))
    motion = TextureMotion()
    assert motion.follow(8, texture, _device(current), mode="flow") is texture.crop
    larger = Texture(torch.zeros(512, 512, 3, dtype=torch.uint8), "s", 1, 7,
                     torch.from_numpy(face_crop))  # an enhanced crop: pasted as it is
    assert motion.follow(7, larger, _device(current), mode="flow") is larger.crop
    warped = motion.follow(7, texture, _device(current), mode="flow")
    assert isinstance(warped, torch.Tensor) and not torch.equal(warped, texture.crop)


def _teeth(face_crop: np.ndarray) -> np.ndarray:
    """``face_crop`` with a soft bright patch over the mouth (teeth as the mouth opens):
    new content with no edge for the flow to follow."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    glow = 120.0 * np.exp(-((xs - 112) ** 2 + (ys - 165) ** 2) / (2 * 18.0**2))
    return np.clip(face_crop + glow[..., None], 0, 255).astype(np.uint8)


def test_new_content_falls_back_photometrically(face_crop: np.ndarray) -> None:
    """Teeth appearing, nothing moved: a soft brightening has no edge, so the flow's two
    directions agree there and only the photometric residual can see it. The weight
    falls inside the patch and stays near 1 over the rest of the face."""
    current = _teeth(face_crop)
    found = estimate_motion(flow_grey(face_crop), flow_grey(current), SIZE)
    assert found is not None
    assert float(found.weight[158:172, 104:120].mean()) < 0.3
    far = np.ones((SIZE, SIZE), bool)
    far[110:224, 50:174] = False  # the patch and its soft edge
    far[:30], far[:, :30], far[:, -30:] = False, False, False  # the edge ramp
    assert float(np.median(found.weight[far])) > 0.9
    # and the shown texture's misfit is measured: larger with new content than without
    same = estimate_motion(flow_grey(face_crop), flow_grey(face_crop), SIZE)
    assert same is not None and found.unexplained > same.unexplained + 2.0


def test_the_misfit_is_recorded_per_track_with_its_texture(face_crop: np.ndarray) -> None:
    current = _teeth(face_crop)
    motion = TextureMotion()
    texture = Texture(face_crop.copy(), "s", 1, 5, face_crop)
    motion.follow(5, texture, _aligned(current), mode="flow")
    shown, misfit = motion.unexplained[5]
    assert shown is texture and misfit > 2.0
    motion.retain([6])
    assert 5 not in motion.unexplained


def test_the_static_texture_misfit_is_measured_only_when_asked(face_crop: np.ndarray) -> None:
    """The error order with the static texture: the plain misfit of the texture's source
    crop against the current crop (0 for a still face, large where the mouth changed),
    measured only while asked, and the texture still shown as it is."""
    asked = [False]
    motion = TextureMotion(measure_static=lambda: asked[0])
    still = Texture(face_crop.copy(), "s", 1, 5, face_crop)
    talking = Texture(face_crop.copy(), "s", 1, 6, face_crop)
    assert motion.follow(5, still, _aligned(face_crop), mode="static") is still.crop
    assert motion.unexplained == {}  # not asked: nothing measured, no cost
    asked[0] = True
    assert motion.follow(5, still, _aligned(face_crop), mode="static") is still.crop
    assert motion.follow(6, talking, _aligned(_teeth(face_crop)), mode="static") is talking.crop
    assert motion.unexplained[5] == (still, 0.0)
    shown, misfit = motion.unexplained[6]
    assert shown is talking and misfit > 2.0
    # another person's texture (a face new to the tracker) says nothing about this face
    motion.follow(7, still, _aligned(_teeth(face_crop)), mode="static")
    assert 7 not in motion.unexplained
    with pytest.raises(ValueError, match="one size"):
        motion_module.plain_misfit(flow_grey(face_crop, 32), flow_grey(face_crop, 16))


def test_the_static_misfit_of_a_device_crop_never_downloads(face_crop: np.ndarray) -> None:
    """On the device path the current crop's grey comes from the host image: without it
    the misfit is skipped, not made by reading the device crop back."""
    torch = pytest.importorskip("torch")

    motion = TextureMotion(measure_static=True)
    texture = Texture(torch.from_numpy(face_crop.copy()), "s", 1, 7, torch.from_numpy(face_crop),
                      grey=flow_grey(face_crop))
    current = _device(_teeth(face_crop))
    motion.follow(7, texture, current, mode="static")
    assert 7 not in motion.unexplained
    motion.follow(7, texture, current, mode="static", current_grey=flow_grey(_teeth(face_crop)))
    assert motion.unexplained[7][1] > 2.0


def test_an_outgoing_texture_follows_one_way_and_leaves_the_misfit_alone(
        face_crop: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A texture fading out: one DIS call, not two (the photometric residual still keeps
    new content out), its warp close to the two-way one, and no misfit recorded."""
    current, _ = _bulge(face_crop, (112, 170), (0.0, 5.0), 30.0)
    calls = []
    real = motion_module._dis

    class Counting:
        def __init__(self, dis: object) -> None:
            self.dis = dis

        def calc(self, *args: object) -> object:
            calls.append(1)
            return self.dis.calc(*args)  # type: ignore[attr-defined]

    monkeypatch.setattr(motion_module, "_dis", lambda: Counting(real()))
    texture = Texture(face_crop.copy(), "s", 1, 5, face_crop)
    both = TextureMotion().follow(5, texture, _aligned(current), mode="flow")
    assert len(calls) == 2
    one_way = TextureMotion()
    got = one_way.follow(5, texture, _aligned(current), mode="flow", outgoing=True)
    assert len(calls) == 3
    assert one_way.unexplained == {}
    assert np.abs(got.astype(int) - both).mean() < 1.0
    assert np.abs(got.astype(int) - texture.crop).mean() > 1.0  # it did move
    teeth = _teeth(face_crop)
    found = estimate_motion(flow_grey(face_crop), flow_grey(teeth), SIZE, both_ways=False)
    assert found is not None and float(found.weight[158:172, 104:120].mean()) < 0.3
