"""Detectors: the embedded dlib detector on real faces, SCRFD decoding and plumbing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from engines.base import TensorSpec
from realtime.faces.detect import (
    DetectorError,
    DlibDetector,
    ScrfdDetector,
    anchor_centers,
    decode_scrfd,
    landmarks_68_to_5,
    letterbox,
    make_detector,
    margin_to_score,
    nms,
    score_to_margin,
    split_scrfd_outputs,
)
from realtime.types import Detection
from tests.dlib_extra import require_dlib


@pytest.fixture(scope="module")
def dlib_detector() -> DlibDetector:
    require_dlib()
    return DlibDetector()


def _check_geometry(det: Detection) -> None:
    x1, y1, x2, y2 = det.box
    lm = det.landmarks
    assert lm.dtype == np.float32 and lm.shape == (5, 2)
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)), (
        det.box, lm)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
    eyes_y = lm[:2, 1].mean()
    mouth_y = lm[3:, 1].mean()
    assert eyes_y < lm[2, 1] < mouth_y  # eyes above nose above mouth
    assert 0.0 < det.score < 1.0


def test_dlib_finds_six_faces_in_t1(t1_bgr: np.ndarray) -> None:
    # t1's faces are ~105 px: 640 px wide keeps them above HOG's 40 px floor
    # (80 px window, one upsampling) with margin; 480 px sits right at it.
    require_dlib()
    detections = DlibDetector(detect_width=640).detect(t1_bgr)
    assert len(detections) == 6
    for det in detections:
        _check_geometry(det)
        assert 80 < det.width < 160
    centres = sorted(float(d.box[0] + d.box[2]) / 2 for d in detections)
    assert min(np.diff(centres)) > 50  # six distinct faces, no duplicates


def test_dlib_default_width_on_t1(t1_bgr: np.ndarray, dlib_detector: DlibDetector) -> None:
    require_dlib()
    detections = dlib_detector.detect(t1_bgr)
    assert 5 <= len(detections) <= 6
    for det in detections:
        _check_geometry(det)


@pytest.mark.parametrize("name", ["astronaut_bgr", "grace_hopper_bgr"])
def test_dlib_one_face_in_portraits(name: str, request: pytest.FixtureRequest,
                                    dlib_detector: DlibDetector) -> None:
    require_dlib()
    image = request.getfixturevalue(name)
    # At dlib's default margin 0 the upsampled HOG can add a borderline false
    # positive (the astronaut's suit patch scores margin 0.04); the face is first.
    detections = dlib_detector.detect(image)
    assert detections and detections[0].score > 0.6
    _check_geometry(detections[0])
    strict = DlibDetector(threshold=0.2).detect(image)
    assert len(strict) == 1
    np.testing.assert_allclose(strict[0].box, detections[0].box)


def test_dlib_no_face_and_bad_input(dlib_detector: DlibDetector) -> None:
    require_dlib()
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert dlib_detector.detect(flat) == []
    with pytest.raises(ValueError, match="uint8"):
        dlib_detector.detect(flat.astype(np.float32))
    with pytest.raises(ValueError, match="detect_width"):
        DlibDetector(detect_width=10)


def test_landmarks_68_to_5() -> None:
    points = np.zeros((68, 2))
    points[36:42] = [[10, 20], [12, 18], [14, 18], [16, 20], [14, 22], [12, 22]]
    points[42:48] = [[30, 20], [32, 18], [34, 18], [36, 20], [34, 22], [32, 22]]
    points[30] = [23, 30]
    points[48] = [15, 40]
    points[54] = [31, 41]
    five = landmarks_68_to_5(points)
    np.testing.assert_allclose(five, [[13, 20], [33, 20], [23, 30], [15, 40], [31, 41]])
    with pytest.raises(ValueError, match="68"):
        landmarks_68_to_5(np.zeros((5, 2)))


def test_score_margin_mapping() -> None:
    assert margin_to_score(0.0) == 0.5
    for margin in (-2.0, -0.3, 0.0, 0.7, 3.0):
        assert score_to_margin(margin_to_score(margin)) == pytest.approx(margin)
    assert margin_to_score(1.0) > margin_to_score(0.5)


# ---------------------------------------------------------------- SCRFD


def test_anchor_centers_hand_computed() -> None:
    centres = anchor_centers(2, 3, 8, 2)
    expected = [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0],
                [0, 8], [0, 8], [8, 8], [8, 8], [16, 8], [16, 8]]
    np.testing.assert_array_equal(centres, expected)


def _empty_outputs(size: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    counts = [(size // s) ** 2 * 2 for s in (8, 16, 32)]
    return ([np.zeros((n, 1), np.float32) for n in counts],
            [np.zeros((n, 4), np.float32) for n in counts],
            [np.zeros((n, 10), np.float32) for n in counts])


def test_decode_scrfd_hand_computed() -> None:
    scores, boxes, kps = _empty_outputs(64)
    # stride 16, 4x4 cells: cell (x=2, y=1), second anchor → index (1*4 + 2)*2 + 1 = 13,
    # centre (2*16, 1*16) = (32, 16)
    scores[1][13] = 0.9
    boxes[1][13] = [1, 2, 3, 4]
    kps[1][13] = [0, 0, 1, 0, 0.5, 1, -0.5, 2, 1.5, 2]
    scores[0][5] = 0.3  # under threshold: dropped
    out_boxes, out_scores, out_kps = decode_scrfd(scores, boxes, kps, (64, 64), threshold=0.5)
    np.testing.assert_allclose(out_scores, [0.9])
    np.testing.assert_allclose(out_boxes, [[32 - 16, 16 - 32, 32 + 48, 16 + 64]])
    np.testing.assert_allclose(out_kps[0], [[32, 16], [48, 16], [40, 32], [24, 48], [56, 48]])
    # a stride-32 anchor: 2x2 cells, cell (1, 1) first anchor → index 6, centre (32, 32)
    scores[2][6] = 0.8
    boxes[2][6] = [0.5, 0.5, 0.5, 0.5]
    out_boxes, out_scores, _ = decode_scrfd(scores, boxes, kps, (64, 64), threshold=0.5)
    np.testing.assert_allclose(out_boxes[1], [16, 16, 48, 48])
    with pytest.raises(DetectorError, match="expected 144 anchors"):
        decode_scrfd(scores, boxes, kps, (72, 64))


def test_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]],
                     np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.6], np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 0.4), [1, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.95), [1, 0, 2, 3])


def test_split_outputs_both_orders_and_batch_axis() -> None:
    scores, boxes, kps = _empty_outputs(64)
    scores[1][13] = 0.9
    by_kind = [*scores, *boxes, *kps]
    by_stride = [a for level in zip(scores, boxes, kps, strict=True) for a in level]
    batched = [a[None] for a in reversed(by_kind)]
    for outputs in (by_kind, by_stride, batched):
        s, b, k = split_scrfd_outputs(outputs, (64, 64))
        assert [a.shape[0] for a in s] == [128, 32, 8]
        assert s[1][13, 0] == np.float32(0.9)
        assert [a.shape[1] for a in b] == [4, 4, 4] and [a.shape[1] for a in k] == [10] * 3
    with pytest.raises(DetectorError, match="does not fit"):
        split_scrfd_outputs([*by_kind[:-1], np.zeros((9, 10), np.float32)], (64, 64))


class FakeScrfdEngine:
    """An Engine returning SCRFD-shaped outputs with one planted face."""

    backend = "fake"

    def __init__(self, size: int, by_stride: bool) -> None:
        self.size = size
        self.by_stride = by_stride
        self.inputs: tuple[TensorSpec, ...] = (
            TensorSpec("input.1", (1, 3, "?", "?"), "float32"),)
        names = [f"out{i}" for i in range(9)]
        self.outputs: tuple[TensorSpec, ...] = tuple(
            TensorSpec(n, ("?", "?"), "float32") for n in names)
        self.feeds: list[np.ndarray] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        blob = feeds["input.1"]
        self.feeds.append(blob)
        height, width = blob.shape[2:]
        counts = [(height // s) * (width // s) * 2 for s in (8, 16, 32)]
        scores = [np.zeros((n, 1), np.float32) for n in counts]
        boxes = [np.zeros((n, 4), np.float32) for n in counts]
        kps = [np.zeros((n, 10), np.float32) for n in counts]
        cols = width // 32
        # one face at stride 32, cell (x=3, y=2) → centre (96, 64) in network pixels,
        # and a weaker duplicate at stride 16 on the same face for NMS to remove
        index = (2 * cols + 3) * 2
        scores[2][index] = 0.95
        boxes[2][index] = [1, 1, 1, 1.5]
        kps[2][index] = [-0.5, -0.5, 0.5, -0.5, 0, 0, -0.4, 0.8, 0.4, 0.8]
        cols16 = width // 16
        dup = (4 * cols16 + 6) * 2 + 1  # centre (96, 64)
        scores[1][dup] = 0.7
        boxes[1][dup] = [2, 2, 2, 3]
        if self.by_stride:
            outputs = [a for level in zip(scores, boxes, kps, strict=True) for a in level]
        else:
            outputs = [*scores, *boxes, *kps]
        return {f"out{i}": a for i, a in enumerate(outputs)}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("by_stride", [False, True])
def test_scrfd_detector_maps_back_to_frame(by_stride: bool) -> None:
    engine = FakeScrfdEngine(640, by_stride)
    detector = ScrfdDetector(engine, threshold=0.5, input_size=640)
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:8, :8] = (10, 20, 30)  # B, G, R
    detections = detector.detect(frame)
    assert len(detections) == 1  # the duplicate was suppressed
    det = detections[0]
    scale = 0.5  # 1280 → 640
    np.testing.assert_allclose(det.box, np.array([64, 32, 128, 112]) / scale, atol=1e-4)
    np.testing.assert_allclose(det.landmarks[0], np.array([80, 48]) / scale, atol=1e-4)
    np.testing.assert_allclose(det.landmarks[4], np.array([108.8, 89.6]) / scale, atol=1e-3)
    assert det.score == pytest.approx(0.95)
    blob = engine.feeds[0]
    assert blob.shape == (1, 3, 640, 640) and blob.dtype == np.float32
    # RGB order, (x - 127.5) / 128; letterbox padding (rows 360+) is black
    np.testing.assert_allclose(blob[0, :, 0, 0], (np.array([30, 20, 10]) - 127.5) / 128,
                               atol=1e-6)
    np.testing.assert_allclose(blob[0, :, 600, 10], -127.5 / 128, atol=1e-6)


def test_letterbox_keeps_aspect() -> None:
    canvas, scale = letterbox(np.full((480, 320, 3), 200, np.uint8), (640, 640))
    assert scale == pytest.approx(640 / 480)
    assert canvas.shape == (640, 640, 3)
    assert canvas[:, :427].min() == 200 and canvas[:, 427:].max() == 0


def test_scrfd_rejects_wrong_model() -> None:
    engine = FakeScrfdEngine(640, False)
    engine.outputs = engine.outputs[:6]
    with pytest.raises(DetectorError, match="expected 9 outputs"):
        ScrfdDetector(engine)


def test_make_detector(tmp_path: Path) -> None:
    from engines.models import ModelMissing
    from realtime.faces.retinaface import RetinaFaceDetector

    detector = make_detector("auto", tmp_path)  # no SCRFD, no face-mesh → RetinaFace alone
    assert isinstance(detector, RetinaFaceDetector)
    assert detector.threshold == pytest.approx(0.5)
    assert isinstance(make_detector("retinaface", tmp_path, threshold=0.7),
                      RetinaFaceDetector)
    with pytest.raises(ModelMissing, match="models download"):
        make_detector("scrfd", tmp_path)
    with pytest.raises(ValueError, match="auto, scrfd, retinaface, dlib"):
        make_detector("haar", tmp_path)


def test_make_detector_dlib(tmp_path: Path) -> None:
    require_dlib()
    detector = make_detector("dlib", tmp_path, threshold=0.7)
    assert isinstance(detector, DlibDetector)
    assert detector.threshold == pytest.approx(score_to_margin(0.7))
    assert make_detector("dlib", tmp_path).threshold == pytest.approx(0.0)  # dlib's default


def test_dlib_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    """Without the extra, choosing dlib names the extra to install (Python's import
    system reports the module as absent, as on a default install)."""
    import sys

    monkeypatch.setitem(sys.modules, "dlib", None)  # ``import dlib`` raises ImportError
    with pytest.raises(DetectorError, match=r"swapcam\[dlib\]"):
        make_detector("dlib", tmp_path)


def test_make_detector_tunes_dlib_at_construction(tmp_path: Path) -> None:
    require_dlib()
    default = make_detector("dlib", tmp_path)
    tuned = make_detector("dlib", tmp_path, detect_width=640, upsample=0)
    assert isinstance(default, DlibDetector) and isinstance(tuned, DlibDetector)
    # None keeps DlibDetector's own defaults (the photo settings)
    plain = DlibDetector()
    assert (default.detect_width, default.upsample) == (plain.detect_width, plain.upsample)
    assert (tuned.detect_width, tuned.upsample) == (640, 0)
    only_width = make_detector("dlib", tmp_path, detect_width=800)
    assert isinstance(only_width, DlibDetector)
    assert (only_width.detect_width, only_width.upsample) == (800, plain.upsample)
    with pytest.raises(ValueError, match="upsample"):
        make_detector("dlib", tmp_path, upsample=-1)
