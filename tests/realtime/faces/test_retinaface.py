"""RetinaFace from the wheel's verified bytes, our anchors and decode, on real photos."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from engines.onnxruntime import OnnxRuntimeEngine
from realtime.faces.boxes import DetectorError
from realtime.faces.retinaface import (
    WEIGHTS_SHA256,
    RetinaFaceDetector,
    anchors,
    decode,
    embedded_onnx_bytes,
    embedded_onnx_path,
)


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> RetinaFaceDetector:
    path = embedded_onnx_path(tmp_path_factory.mktemp("derived"))
    return RetinaFaceDetector(OnnxRuntimeEngine(path, threads=2), detect_width=1280)


def test_embedded_bytes_are_the_pinned_weights() -> None:
    assert hashlib.sha256(embedded_onnx_bytes()).hexdigest() == WEIGHTS_SHA256


def test_other_package_or_tampered_weights_refused(tmp_path: Path) -> None:
    other = tmp_path / "weights.py"
    other.write_text("def detect():\n    return []\n")  # another 'retinaface' package
    with pytest.raises(DetectorError, match="no WEIGHTS"):
        embedded_onnx_bytes(other)
    other.write_text("WEIGHTS = b'\\x08\\x06 not the model'\n")
    with pytest.raises(DetectorError, match="sha256"):
        embedded_onnx_bytes(other)


def test_cached_onnx_rewritten_when_changed(tmp_path: Path) -> None:
    path = embedded_onnx_path(tmp_path)
    path.write_bytes(b"corrupt")
    assert embedded_onnx_path(tmp_path) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_anchor_count_matches_the_network(detector: RetinaFaceDetector) -> None:
    for h, w in ((384, 640), (96, 160), (736, 1280)):
        out = detector.engine.run({"input": np.zeros((1, 3, h, w), np.float32)})
        assert out["loc"].shape[1] == anchors(h, w).shape[0]
    first = anchors(64, 64)[:4]  # stride 8: cell (0,0) twice (16, 32), then cell (1,0)
    assert first.tolist() == [[4, 4, 16], [4, 4, 32], [12, 4, 16], [12, 4, 32]]


def test_decode_hand_computed() -> None:
    n = anchors(32, 32).shape[0]
    loc = np.zeros((n, 4), np.float32)
    conf = np.tile(np.array([[0.9, 0.1]], np.float32), (n, 1))
    kps = np.zeros((n, 10), np.float32)
    conf[5] = (0.2, 0.8)
    loc[5] = (1.0, -1.0, 0.0, np.log(2.0) / 0.2)
    kps[5, :2] = (2.0, 0.0)
    boxes, scores, points = decode(loc, conf, kps, (32, 32), 0.5)
    cx, cy, size = anchors(32, 32)[5]
    assert scores.tolist() == pytest.approx([0.8])
    centre = (cx + 0.1 * size, cy - 0.1 * size)
    assert boxes[0].tolist() == pytest.approx([centre[0] - size / 2, centre[1] - size,
                                               centre[0] + size / 2, centre[1] + size])
    assert points[0, 0].tolist() == pytest.approx([cx + 0.2 * size, cy])
    with pytest.raises(DetectorError, match="anchors"):
        decode(loc[:-1], conf[:-1], kps[:-1], (32, 32), 0.5)


def test_finds_the_six_faces_of_t1(detector: RetinaFaceDetector, t1_bgr: np.ndarray) -> None:
    found = detector.detect(t1_bgr)
    assert len(found) == 6
    for det in found:
        x1, y1, x2, y2 = det.box
        assert 60 < x2 - x1 < 160 and det.score > 0.9
        inside = ((det.landmarks[:, 0] > x1) & (det.landmarks[:, 0] < x2)
                  & (det.landmarks[:, 1] > y1) & (det.landmarks[:, 1] < y2))
        assert inside.all()
        assert det.landmarks[0, 0] < det.landmarks[1, 0]  # image-left eye first
        assert det.landmarks[3, 0] < det.landmarks[4, 0]


@pytest.mark.parametrize("name", ["astronaut_bgr", "grace_hopper_bgr"])
def test_one_face_in_portraits_and_none_in_a_blank(name: str, request: pytest.FixtureRequest,
                                                   detector: RetinaFaceDetector) -> None:
    image = request.getfixturevalue(name)
    assert len(detector.detect(image)) == 1
    assert detector.detect(np.full((360, 640, 3), 128, np.uint8)) == []


def test_detect_width_downscales_and_maps_back(detector: RetinaFaceDetector,
                                               t1_bgr: np.ndarray) -> None:
    full = sorted(detector.detect(t1_bgr), key=lambda d: d.box[0])
    detector.detect_width = 640
    try:
        half = sorted(detector.detect(t1_bgr), key=lambda d: d.box[0])
    finally:
        detector.detect_width = 1280
    assert len(half) == len(full)
    for a, b in zip(full, half, strict=True):
        assert np.abs(a.landmarks - b.landmarks).max() < 0.08 * a.width
