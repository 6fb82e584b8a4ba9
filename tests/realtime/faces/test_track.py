"""Tracking between detections, One Euro smoothing, identities through a crossing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.faces.track import FaceTracker, OneEuroFilter, box_iou
from realtime.types import Detection
from tests.dlib_extra import require_dlib


def _background(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 3)


def _patch(image: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)


# five landmark-like points inside a 100×120 patch (eyes, nose, mouth corners)
PATCH_LMK = np.array([[30, 45], [70, 45], [50, 68], [35, 90], [65, 90]], dtype=np.float64)
PATCH_W, PATCH_H = 100, 120


def _truth(x: float, y: float) -> Detection:
    box = np.array([x, y, x + PATCH_W, y + PATCH_H], dtype=np.float32)
    return Detection(box, 0.9, (PATCH_LMK + np.array([x, y])).astype(np.float32))


def _render(bg: np.ndarray, patches: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Paste patches at sub-pixel positions (later ones in front)."""
    out = bg.copy()
    h, w = bg.shape[:2]
    for patch, x, y in patches:
        m = np.array([[1, 0, x], [0, 1, y]], dtype=np.float64)
        warped = cv2.warpAffine(patch, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.full(patch.shape[:2], 255, np.uint8), m, (w, h)) > 127
        out[mask] = warped[mask]
    return out


def test_one_euro_smooths_a_still_signal_and_follows_a_moving_one() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(240) / 30.0
    results = {}
    for amplitude in (0.0, 90.0):  # still, then a head swaying at up to 141 px/s
        truth = 300.0 + amplitude * np.sin(2 * np.pi * t / 4.0)
        raw = truth[:, None, None] + rng.normal(0, 0.8, (240, 5, 2))
        f = OneEuroFilter()
        out = np.array([f(x, ti, scale=200.0) for x, ti in zip(raw, t, strict=True)])
        err = out[30:] - truth[30:, None, None]
        raw_err = raw[30:] - truth[30:, None, None]
        results[amplitude] = (float(np.sqrt((err**2).mean())),
                              float(np.sqrt((raw_err**2).mean())))
    still, still_raw = results[0.0]
    moving, _ = results[90.0]
    assert still < 0.45 * still_raw, results  # jitter removed when still...
    assert moving < 2.0, results  # ...without trailing a moving head


def test_flow_follows_a_moving_face_between_detections(astronaut_bgr: np.ndarray) -> None:
    bg = _background(360, 640)
    face = _patch(astronaut_bgr, (170, 50, 330, 240), (PATCH_W, PATCH_H))
    tracker = FaceTracker(detect_every=1000, smooth=False)
    xs = [100 + 7.3 * i for i in range(40)]
    ys = [80 + 2.1 * i for i in range(40)]
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        image = _render(bg, [(face, x, y)])
        faces = tracker.update(image, i / 30.0, [_truth(x, y)] if i == 0 else None)
        assert len(faces) == 1 and faces[0].track_id == 1
    error = np.abs(faces[0].landmarks - _truth(xs[-1], ys[-1]).landmarks).max()
    assert error < 3.0, f"drifted {error:.1f} px after 39 tracked frames"
    assert box_iou(faces[0].box, _truth(xs[-1], ys[-1]).box) > 0.8


def test_a_vanished_face_is_lost_and_asks_for_detection(astronaut_bgr: np.ndarray) -> None:
    bg = _background(360, 640)
    face = _patch(astronaut_bgr, (170, 50, 330, 240), (PATCH_W, PATCH_H))
    tracker = FaceTracker(detect_every=1000)
    tracker.update(_render(bg, [(face, 200, 100)]), 0.0, [_truth(200, 100)])
    assert not tracker.needs_detection()
    faces = tracker.update(bg, 1 / 30, None)
    assert faces == []
    assert tracker.needs_detection()


def test_detection_cadence() -> None:
    tracker = FaceTracker(detect_every=3)
    image = _background(120, 160)
    det = Detection(np.array([40, 30, 100, 100], np.float32), 0.9,
                    (PATCH_LMK * 0.5 + [40, 30]).astype(np.float32))
    pattern = []
    for i in range(9):
        need = tracker.needs_detection()
        pattern.append(need)
        tracker.update(image, i / 30, [det] if need else None)
    assert pattern == [True, False, False, True, False, False, True, False, False]


def test_late_detection_is_carried_to_the_current_frame(astronaut_bgr: np.ndarray) -> None:
    bg = _background(360, 640)
    face = _patch(astronaut_bgr, (170, 50, 330, 240), (PATCH_W, PATCH_H))
    tracker = FaceTracker(detect_every=1000, smooth=False)
    old = _render(bg, [(face, 150, 100)])
    old_grey = tracker.prepare(old)
    tracker.update(old, 0.0, None)
    tracker.update(_render(bg, [(face, 160, 103)]), 1 / 30, None)
    # the detection ran on the old frame and arrives two frames later
    faces = tracker.update(_render(bg, [(face, 170, 106)]), 2 / 30, [_truth(150, 100)],
                           detected_grey=old_grey)
    assert len(faces) == 1
    assert np.abs(faces[0].landmarks - _truth(170, 106).landmarks).max() < 2.0


def test_identity_kept_through_a_crossing(astronaut_bgr: np.ndarray,
                                          grace_hopper_bgr: np.ndarray) -> None:
    bg = _background(360, 640, seed=3)
    a = _patch(astronaut_bgr, (170, 50, 330, 240), (PATCH_W, PATCH_H))
    b = _patch(grace_hopper_bgr, (160, 100, 360, 340), (PATCH_W, PATCH_H))
    tracker = FaceTracker(detect_every=3)
    ids: dict[str, int] = {}
    for i in range(50):
        ax, ay = 40 + 10.0 * i, 100.0
        bx, by = 540 - 10.0 * i, 170.0  # 70 px lower: the boxes overlap while crossing
        image = _render(bg, [(a, ax, ay), (b, bx, by)])
        dets = None
        if tracker.needs_detection():
            # a detector reports faces in scan order: left to right, so the list order
            # swaps at the crossing and must not decide identities
            dets = sorted([_truth(ax, ay), _truth(bx, by)], key=lambda d: float(d.box[0]))
        faces = tracker.update(image, i / 30, dets)
        assert len(faces) == 2, f"frame {i}: {len(faces)} faces"
        by_pos = {("a" if abs(f.box[1] - ay) < abs(f.box[1] - by) else "b"): f.track_id
                  for f in faces}
        assert len(by_pos) == 2
        if not ids:
            ids = by_pos
        assert by_pos == ids, f"frame {i}: identities swapped {by_pos} != {ids}"
        for f in faces:
            x = ax if f.track_id == ids["a"] else bx
            assert abs(float(f.box[0]) - x) < 12.0, f"frame {i}: track {f.track_id} off"


def _still_noisy_clip(image: np.ndarray, n: int, sigma: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        noise = rng.normal(0, sigma, image.shape)
        out.append(np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8))
    return out


def _spread(points: np.ndarray) -> float:
    """Mean over landmarks of the standard deviation of their positions, in pixels."""
    return float(points.std(axis=0).mean())


def test_still_face_jitters_less_with_smoothing_synthetic_detector(
        astronaut_bgr: np.ndarray) -> None:
    """Detections with 1.5 px noise on a still face, every frame."""
    rng = np.random.default_rng(5)
    bg = _background(360, 640)
    face = _patch(astronaut_bgr, (170, 50, 330, 240), (PATCH_W, PATCH_H))
    frames = _still_noisy_clip(_render(bg, [(face, 200, 100)]), 60, 6.0)
    tracker = FaceTracker(detect_every=1)
    raw, smooth = [], []
    for i, image in enumerate(frames):
        truth = _truth(200, 100)
        noisy = Detection(truth.box, 0.9,
                          (truth.landmarks + rng.normal(0, 1.5, (5, 2))).astype(np.float32))
        faces = tracker.update(image, i / 30, [noisy])
        raw.append(noisy.landmarks)
        smooth.append(faces[0].landmarks)
    raw_s, smooth_s = _spread(np.array(raw[10:])), _spread(np.array(smooth[10:]))
    assert smooth_s < 0.4 * raw_s, f"smoothed {smooth_s:.2f} px vs raw {raw_s:.2f} px"


def test_still_face_jitters_less_with_smoothing_real_detector(
        grace_hopper_bgr: np.ndarray) -> None:
    """The embedded dlib detector on a noisy clip of a still portrait."""
    require_dlib()
    pytest.importorskip("dlib")
    from realtime.faces.detect import DlibDetector

    detector = DlibDetector(detect_width=320, upsample=0)
    image = cv2.resize(grace_hopper_bgr, (320, 376))
    frames = _still_noisy_clip(image, 40, 10.0, seed=2)
    raw_tracker = FaceTracker(detect_every=1, smooth=False)
    smooth_tracker = FaceTracker(detect_every=1)
    raw, smooth = [], []
    for i, frame in enumerate(frames):
        dets = detector.detect(frame)
        assert dets, f"frame {i}: no face"
        raw.append(raw_tracker.update(frame, i / 30, dets[:1])[0].landmarks)
        smooth.append(smooth_tracker.update(frame, i / 30, dets[:1])[0].landmarks)
    raw_s, smooth_s = _spread(np.array(raw[10:])), _spread(np.array(smooth[10:]))
    assert raw_s > 0.05, "the noisy clip should make raw detections jitter"
    assert smooth_s < 0.5 * raw_s, f"smoothed {smooth_s:.3f} px vs raw {raw_s:.3f} px"


def test_landmarker_remeasures_points_between_detections(astronaut_bgr: np.ndarray) -> None:
    """With a landmarker, each in-between frame's points are the landmarker's (on the
    flowed box); an empty answer marks the face lost and asks for a detection."""
    box = np.array([180, 80, 330, 260], np.float32)
    five = np.array([[220, 150], [290, 150], [255, 190], [230, 225], [280, 225]],
                    np.float32)
    seen: list[np.ndarray] = []
    answer = {"shift": 2.0, "empty": False}

    def landmarker(image: np.ndarray, dets: list[Detection]) -> list[Detection]:
        assert image is astronaut_bgr and len(dets) == 1
        seen.append(dets[0].box.copy())
        if answer["empty"]:
            return []
        return [Detection(dets[0].box, dets[0].score, dets[0].landmarks + answer["shift"])]

    tracker = FaceTracker(detect_every=5, landmarker=landmarker, smooth=False)
    tracker.update(astronaut_bgr, 0.0, [Detection(box, 0.9, five)])
    assert seen == []  # a detection frame keeps the detector's points
    faces = tracker.update(astronaut_bgr, 1 / 30)
    assert len(seen) == 1 and np.allclose(seen[0], box, atol=1.0)  # still frame: box holds
    assert np.allclose(faces[0].detection.landmarks, five + 2.0, atol=0.5)
    answer["empty"] = True
    assert tracker.update(astronaut_bgr, 2 / 30) == []
    assert tracker.needs_detection()


def test_grid_points_cover_the_inner_box_row_by_row() -> None:
    """The flow's points inside a box: a GRID × GRID lattice from 20 % to 80 % of each
    side, x varying fastest (the order the flow groups rely on), float64."""
    from realtime.faces.track import GRID, _grid_points

    box = np.array([100.0, 50.0, 300.0, 450.0], np.float32)
    points = _grid_points(box)
    fractions = np.linspace(0.2, 0.8, GRID)
    xs, ys = 100.0 + fractions * 200.0, 50.0 + fractions * 400.0
    expected = np.array([(x, y) for y in ys for x in xs])
    assert points.dtype == np.float64 and points.shape == (GRID * GRID, 2)
    np.testing.assert_array_equal(points, expected)
