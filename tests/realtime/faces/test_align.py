"""Alignment: template constants, the similarity estimate, template choice, warps."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from realtime.faces import align
from realtime.faces.align import (
    ARCFACE_112_TEMPLATE,
    CROP_SIZES,
    FFHQ_512_TEMPLATE,
    INSWAPPER_128_TEMPLATE,
    SIMSWAP_224_TEMPLATES,
    AlignmentError,
    align_matrix,
    estimate_similarity,
    family_templates,
    invert_affine,
    transform_points,
    warp_face,
)
from realtime.faces.detect import DlibDetector
from tests.dlib_extra import require_dlib


def test_simswap_templates_values() -> None:
    assert SIMSWAP_224_TEMPLATES.dtype == np.float32
    assert SIMSWAP_224_TEMPLATES.shape == (5, 5, 2)
    expected = {
        0: [(51.642, 50.115), (57.617, 49.990), (35.740, 69.007), (51.157, 89.050),
            (57.025, 89.702)],
        1: [(45.031, 50.118), (65.568, 50.872), (39.677, 68.111), (45.177, 86.190),
            (64.246, 86.758)],
        2: [(39.730, 51.138), (72.270, 51.138), (56.000, 68.493), (42.463, 87.010),
            (69.537, 87.010)],
        3: [(46.845, 50.872), (67.382, 50.118), (72.737, 68.111), (48.167, 86.758),
            (67.236, 86.190)],
        4: [(54.796, 49.990), (60.771, 50.115), (76.673, 69.007), (55.388, 89.702),
            (61.257, 89.050)],
    }
    for index, points in expected.items():
        np.testing.assert_allclose(SIMSWAP_224_TEMPLATES[index], points, atol=1e-4)
    # the right-side poses mirror the left-side ones (same y, x about one axis)
    for left, right in ((0, 4), (1, 3)):
        mirrored = SIMSWAP_224_TEMPLATES[right][[1, 0, 2, 4, 3]]
        np.testing.assert_allclose(SIMSWAP_224_TEMPLATES[left][:, 1], mirrored[:, 1])
        x_sums = SIMSWAP_224_TEMPLATES[left][:, 0] + mirrored[:, 0]
        assert np.ptp(x_sums) < 2e-3


def test_simswap_224_uses_112_templates_doubled() -> None:
    candidates = family_templates("simswap-224")
    assert candidates.shape == (5, 5, 2)
    np.testing.assert_allclose(candidates, SIMSWAP_224_TEMPLATES.astype(np.float64) * 2)
    # landmarks placed exactly on the doubled frontal template need no transform
    matrix = align_matrix(SIMSWAP_224_TEMPLATES[2] * 2.0, "simswap-224")
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_ffhq_arcface_inswapper_values() -> None:
    np.testing.assert_allclose(
        FFHQ_512_TEMPLATE,
        [[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
         [201.26117, 371.41043], [313.08905, 371.15118]], atol=1e-4)
    np.testing.assert_allclose(
        ARCFACE_112_TEMPLATE,
        [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
         [41.5493, 92.3655], [70.7299, 92.2041]], atol=1e-4)
    # +8 px in x, not scaled: y identical, x shifted
    np.testing.assert_allclose(INSWAPPER_128_TEMPLATE[:, 1], ARCFACE_112_TEMPLATE[:, 1])
    np.testing.assert_allclose(INSWAPPER_128_TEMPLATE[:, 0] - ARCFACE_112_TEMPLATE[:, 0], 8.0,
                               atol=1e-5)
    assert CROP_SIZES == {"simswap-224": 224, "simswap-512": 512, "inswapper-128": 128,
                          "arcface-112": 112}
    with pytest.raises(ValueError):
        SIMSWAP_224_TEMPLATES[0, 0, 0] = 1.0  # constants are read-only


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty]])


def test_estimate_similarity_recovers_exact_transform() -> None:
    truth = _similarity(1.7, 23.0, -40.0, 12.5)
    src = np.array([[10, 20], [80, 25], [45, 60], [20, 90], [75, 95]], dtype=np.float64)
    dst = transform_points(truth, src)
    np.testing.assert_allclose(estimate_similarity(src, dst), truth, atol=1e-9)


def test_estimate_similarity_matches_opencv_least_squares() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        truth = _similarity(rng.uniform(0.3, 3), rng.uniform(-60, 60), *rng.uniform(-50, 50, 2))
        src = rng.uniform(0, 200, (5, 2))
        dst = transform_points(truth, src) + rng.normal(0, 2.0, (5, 2))  # noisy: LS, not exact
        ours = estimate_similarity(src, dst)
        theirs, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=1e6, refineIters=100)
        assert inliers.all()
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
        # and it is the least-squares optimum: perturbing it raises the error
        base = float(((transform_points(ours, src) - dst) ** 2).sum())
        for delta in (1e-3, -1e-3):
            nudged = ours.copy()
            nudged[0, 2] += delta
            assert float(((transform_points(nudged, src) - dst) ** 2).sum()) > base


def test_estimate_similarity_never_reflects() -> None:
    src = np.array([[0, 0], [10, 1], [2, 12], [13, 9], [4, 5]], dtype=np.float64)
    dst = src.copy()
    dst[:, 0] *= -1  # a mirror image: the best similarity must still be a rotation
    matrix = estimate_similarity(src, dst)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_estimate_similarity_rejects_bad_input() -> None:
    with pytest.raises(AlignmentError, match="same point"):
        estimate_similarity(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(AlignmentError, match="differ"):
        estimate_similarity(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(AlignmentError, match="finite"):
        estimate_similarity(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(AlignmentError, match="unknown alignment family"):
        align_matrix(ARCFACE_112_TEMPLATE, "simswap-999")


@pytest.mark.parametrize("pose", range(5))
def test_best_residual_picks_the_matching_pose(pose: int) -> None:
    truth = _similarity(0.6, -12.0, 300.0, 150.0)
    frame_points = transform_points(invert_affine(truth), SIMSWAP_224_TEMPLATES[pose] * 2.0)
    matrix = align_matrix(frame_points, "simswap-224")
    np.testing.assert_allclose(matrix, truth, atol=1e-6)
    errors = [align.residual(estimate_similarity(frame_points, t), frame_points, t)
              for t in family_templates("simswap-224")]
    assert int(np.argmin(errors)) == pose


def test_invert_and_transform_points_round_trip() -> None:
    m = _similarity(2.5, 40.0, 17.0, -3.0)
    inv = invert_affine(m)
    pts = np.array([[0.0, 0.0], [100.0, 50.0], [-20.0, 7.5]])
    np.testing.assert_allclose(transform_points(inv, transform_points(m, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(inv, cv2.invertAffineTransform(m), atol=1e-12)
    with pytest.raises(AlignmentError, match="singular"):
        invert_affine(np.zeros((2, 3)))


@pytest.fixture(scope="module")
def t1_detections(t1_bgr: np.ndarray) -> list:
    require_dlib()
    return DlibDetector(detect_width=640).detect(t1_bgr)


@pytest.mark.parametrize("family", ["simswap-224", "simswap-512", "inswapper-128", "arcface-112"])
def test_aligned_crops_are_upright_at_template(t1_bgr: np.ndarray, t1_detections: list,
                                               family: str) -> None:
    assert len(t1_detections) == 6
    size = CROP_SIZES[family]
    angles = []
    for det in t1_detections:
        aligned = warp_face(t1_bgr, det.landmarks, family)
        assert aligned.crop.shape == (size, size, 3)
        # the crop is exactly the frame warped by the matrix
        np.testing.assert_array_equal(
            aligned.crop, cv2.warpAffine(t1_bgr, aligned.matrix, (size, size),
                                         flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0))
        crop_points = transform_points(aligned.matrix, det.landmarks)
        eyes = crop_points[1] - crop_points[0]
        angles.append(abs(math.degrees(math.atan2(eyes[1], eyes[0]))))
        template = family_templates(family)
        nearest = min(np.abs(crop_points - t).max() for t in template)
        assert nearest < 0.12 * size  # landmarks land near their template positions
    # The frame's eye lines tilt by up to 32°. A five-point least-squares fit also
    # honours nose and mouth, so a smiling, turned face keeps a few degrees.
    assert max(angles) < 8.5, angles
    assert float(np.mean(angles)) < 4.0, angles


def test_crop_landmarks_redetected_upright(t1_bgr: np.ndarray, t1_detections: list) -> None:
    """Independent check: the detector run on the 512 crop itself sees level eyes."""
    require_dlib()
    detector = DlibDetector(detect_width=512, upsample=0)
    checked = 0
    for det in t1_detections:
        crop = warp_face(t1_bgr, det.landmarks, "simswap-512").crop
        found = detector.detect(crop)
        if not found:
            continue
        pts = found[0].landmarks
        eyes = pts[1] - pts[0]
        assert abs(math.degrees(math.atan2(eyes[1], eyes[0]))) < 8.5
        np.testing.assert_allclose(pts[:2], FFHQ_512_TEMPLATE[:2], atol=0.1 * 512)
        checked += 1
    assert checked >= 4


def test_warp_face_rejects_bad_input(t1_bgr: np.ndarray) -> None:
    with pytest.raises(ValueError):
        warp_face(t1_bgr.astype(np.float32), ARCFACE_112_TEMPLATE, "arcface-112")
    with pytest.raises(ValueError):
        warp_face(t1_bgr, np.zeros((4, 2), np.float32), "arcface-112")


@pytest.mark.parametrize("family", ["simswap-224", "arcface-112", "inswapper-128"])
def test_crop_past_the_frame_edge_is_black(grace_hopper_bgr: np.ndarray, family: str) -> None:
    """A tight headshot (the usual source photo) and a face cut by the frame border are
    padded with black, as the official code pads them, not with replicated edges."""
    require_dlib()
    detections = DlibDetector().detect(grace_hopper_bgr)
    assert detections
    det = max(detections, key=lambda d: d.area)
    x0 = int(det.landmarks[:, 0].min())  # cut through the left eye's outer side
    y0 = int(det.landmarks[:, 1].min()) - 20
    tight = np.ascontiguousarray(grace_hopper_bgr[y0:, x0:])
    aligned = warp_face(tight, det.landmarks - np.array([x0, y0], np.float32), family)
    size = CROP_SIZES[family]
    # crop pixels whose whole bilinear support lies outside the frame
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2)
    src = transform_points(invert_affine(aligned.matrix), grid).reshape(size, size, 2)
    outside = (src[..., 0] < -1) | (src[..., 1] < -1)
    assert outside.mean() > 0.05  # the crop really reaches past the edge
    assert aligned.crop[outside].max() == 0
    inside = (src[..., 0] > 1) & (src[..., 1] > 1)
    assert aligned.crop[inside].mean() > 30  # the face itself is there
