"""Region-only composite: geometry proof on real faces, masks, colour, borders."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.faces.align import AlignedFace, warp_face
from realtime.faces.detect import DlibDetector
from realtime.frame.composite import (
    blend,
    crop_mask,
    face_region,
    match_color,
    paste_face,
    paste_faces,
)
from realtime.types import Detection
from tests.dlib_extra import require_dlib


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def t1_faces(t1_bgr: np.ndarray) -> list[Detection]:
    require_dlib()
    faces = DlibDetector(detect_width=640).detect(t1_bgr)
    assert len(faces) == 6
    return faces


@pytest.mark.parametrize("family", ["simswap-224", "simswap-512", "inswapper-128"])
@pytest.mark.parametrize("color", [False, True])
def test_identity_swap_gives_back_the_frame(t1_bgr: np.ndarray, t1_faces: list[Detection],
                                            family: str, color: bool) -> None:
    """Geometry proof: pasting every face's own crop back changes (almost) nothing."""
    out = t1_bgr.copy()
    outside = np.ones(t1_bgr.shape[:2], dtype=bool)
    regions = []
    for face in t1_faces:
        aligned = warp_face(t1_bgr, face.landmarks, family)
        paste_face(out, aligned.crop, aligned.matrix, color_match=color)
        region = face_region(aligned.matrix, aligned.size, t1_bgr.shape)
        regions.append(region)
        x0, y0, x1, y1 = region
        outside[y0:y1, x0:x1] = False
    for x0, y0, x1, y1 in regions:
        assert _psnr(out[y0:y1, x0:x1], t1_bgr[y0:y1, x0:x1]) >= 40.0
    np.testing.assert_array_equal(out[outside], t1_bgr[outside])
    assert outside.mean() > 0.5  # the regions are small: most of the frame is untouched


def test_swapped_content_lands_on_the_face(t1_bgr: np.ndarray,
                                           t1_faces: list[Detection]) -> None:
    face = t1_faces[0]
    aligned = warp_face(t1_bgr, face.landmarks, "simswap-224")
    green = np.zeros_like(aligned.crop)
    green[..., 1] = 255
    out = t1_bgr.copy()
    paste_face(out, green, aligned.matrix, color_match=False)
    # the nose tip is deep inside the mask: fully replaced
    nx, ny = np.round(face.landmarks[2]).astype(int)
    np.testing.assert_array_equal(out[ny, nx], [0, 255, 0])
    x0, y0, x1, y1 = face_region(aligned.matrix, aligned.size, t1_bgr.shape)
    changed = np.any(out != t1_bgr, axis=2)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    # the soft edge: some pixels only partly green
    ratio = out[changed][:, 1].astype(int) - t1_bgr[changed][:, 1]
    assert np.any((ratio > 0) & (out[changed][:, 1] < 255))


def test_region_is_the_crop_footprint() -> None:
    # crop of 100 px mapped 1:2 from frame (frame→crop scale 0.5) at offset (50, 30)
    matrix = np.array([[0.5, 0.0, -25.0], [0.0, 0.5, -15.0]])
    assert face_region(matrix, 100, (480, 640, 3), margin=0) == (49, 29, 250, 230)
    # partly outside: clipped to the frame
    left = np.array([[0.5, 0.0, 25.0], [0.0, 0.5, 10.0]])
    x0, y0, x1, y1 = face_region(left, 100, (480, 640, 3), margin=2)
    assert (x0, y0) == (0, 0) and x1 == 152 and y1 == 182
    # entirely off-frame: empty
    far = np.array([[0.5, 0.0, 500.0], [0.0, 0.5, 0.0]])
    x0, _, x1, _ = face_region(far, 100, (480, 640, 3))
    assert x1 <= x0


def test_crop_mask_shape_and_scaling() -> None:
    mask = crop_mask(224, 0.08)
    assert mask.dtype == np.float32 and mask.shape == (224, 224)
    assert mask[112, 112] == 1.0
    assert mask[0].max() == 0.0 and mask[:, 0].max() == 0.0 and mask[-1].max() == 0.0
    assert mask[0, 0] == 0.0
    np.testing.assert_allclose(mask, mask[::-1], atol=1e-6)  # symmetric
    np.testing.assert_allclose(mask, mask.T, atol=1e-6)
    # feather scales with the crop: the ramp covers the same fraction at 448
    big = crop_mask(448, 0.08)
    ramp_small = np.count_nonzero((mask[112] > 0) & (mask[112] < 1))
    ramp_big = np.count_nonzero((big[224] > 0) & (big[224] < 1))
    assert abs(ramp_big - 2 * ramp_small) <= 2
    assert crop_mask(224, 0.08) is mask  # cached
    with pytest.raises(ValueError):
        mask[0, 0] = 1.0
    hard = crop_mask(128, 0.0)
    assert set(np.unique(hard)) == {0.0, 1.0}
    with pytest.raises(ValueError, match="feather"):
        crop_mask(128, 0.7)


def test_match_color_moves_statistics(astronaut_bgr: np.ndarray) -> None:
    target = astronaut_bgr[100:228, 150:278].copy()
    # a darker, lower-contrast, blue-shifted version of the same content
    source = np.clip(target.astype(np.float32) * 0.6 + np.array([40, 5, 0]), 0, 255).astype(
        np.uint8)
    mask = np.ones(target.shape[:2], np.float32)
    matched = match_color(source, target, mask)
    assert matched.dtype == np.uint8 and matched.shape == source.shape
    for c in range(3):
        assert abs(matched[..., c].mean() - target[..., c].mean()) < 1.5
        assert abs(matched[..., c].std() - target[..., c].std()) < 2.0
    assert np.abs(matched.astype(int) - target).mean() < 3.0
    assert np.abs(source.astype(int) - target).mean() > 15.0
    # only the masked pixels count: with a mask on the left half, the right half's
    # statistics do not pull the result
    half = np.zeros_like(mask)
    half[:, :64] = 1.0
    left = match_color(source, target, half)
    assert abs(left[:, :64, 0].mean() - target[:, :64, 0].mean()) < 1.5


def test_color_match_in_paste(t1_bgr: np.ndarray, t1_faces: list[Detection]) -> None:
    face = t1_faces[1]
    aligned = warp_face(t1_bgr, face.landmarks, "simswap-224")
    tinted = np.clip(aligned.crop.astype(int) + np.array([0, 0, 60]), 0, 255).astype(np.uint8)
    plain = t1_bgr.copy()
    matched = t1_bgr.copy()
    paste_face(plain, tinted, aligned.matrix, color_match=False)
    paste_face(matched, tinted, aligned.matrix, color_match=True)
    x0, y0, x1, y1 = face_region(aligned.matrix, aligned.size, t1_bgr.shape)
    original = t1_bgr[y0:y1, x0:x1]
    assert _psnr(matched[y0:y1, x0:x1], original) > _psnr(plain[y0:y1, x0:x1], original) + 8


def test_border_face(t1_bgr: np.ndarray, t1_faces: list[Detection]) -> None:
    """A face cut by the frame edge: only the visible part is pasted, correctly."""
    face = t1_faces[0]
    cx = int(face.landmarks[2, 0])
    frame = np.ascontiguousarray(t1_bgr[:, cx:])  # cut through the nose
    landmarks = face.landmarks - np.array([cx, 0], np.float32)
    aligned = warp_face(frame, landmarks, "simswap-224")
    x0, y0, x1, y1 = face_region(aligned.matrix, aligned.size, frame.shape)
    assert x0 == 0 and x1 > 0
    out = frame.copy()
    paste_face(out, aligned.crop, aligned.matrix)
    assert _psnr(out[y0:y1, x0:x1], frame[y0:y1, x0:x1]) >= 40.0
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], frame[outside])
    # a different crop shows up in the visible part, including the edge column
    grey = np.full_like(aligned.crop, 128)
    out2 = frame.copy()
    paste_face(out2, grey, aligned.matrix, color_match=False)
    ny = int(landmarks[2, 1])
    np.testing.assert_array_equal(out2[ny, 0], [128, 128, 128])
    # entirely outside: nothing happens
    shifted = aligned.matrix.copy()
    shifted[0, 2] += 5000
    out3 = frame.copy()
    paste_face(out3, grey, shifted)
    np.testing.assert_array_equal(out3, frame)


def test_several_faces_and_no_faces(t1_bgr: np.ndarray, t1_faces: list[Detection]) -> None:
    aligned = [warp_face(t1_bgr, f.landmarks, "inswapper-128") for f in t1_faces]
    out = t1_bgr.copy()
    # rotate identities: each face receives its neighbour's crop
    paste_faces(out, [aligned[(i + 1) % 6].crop for i in range(6)], [a.matrix for a in aligned])
    for a in aligned:
        x0, y0, x1, y1 = face_region(a.matrix, a.size, t1_bgr.shape)
        assert np.any(out[y0:y1, x0:x1] != t1_bgr[y0:y1, x0:x1])
    untouched = t1_bgr.copy()
    paste_faces(untouched, [], [])
    np.testing.assert_array_equal(untouched, t1_bgr)
    with pytest.raises(ValueError, match="crops but"):
        paste_faces(out, [aligned[0].crop], [])


def test_blend_and_bad_inputs(t1_bgr: np.ndarray) -> None:
    a = np.full((4, 4, 3), 100, np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    w = np.full((4, 4), 0.25, np.float32)
    np.testing.assert_array_equal(blend(a, b, w), np.full((4, 4, 3), 175, np.uint8))
    crop = np.zeros((224, 224, 3), np.uint8)
    matrix = np.eye(2, 3)
    with pytest.raises(ValueError, match="uint8"):
        paste_face(t1_bgr.astype(np.float32), crop, matrix)
    with pytest.raises(ValueError, match="square"):
        paste_face(t1_bgr.copy(), np.zeros((224, 200, 3), np.uint8), matrix)
    with pytest.raises(ValueError):
        AlignedFace(crop=crop, matrix=np.eye(3), size=224)
