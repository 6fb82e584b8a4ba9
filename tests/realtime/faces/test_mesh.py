"""FaceMesh refinement: ROI geometry, five points, presence filter, converted-file cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.onnxruntime import OnnxRuntimeEngine
from realtime.faces.mesh import (
    LEFT_EYE,
    RIGHT_EYE,
    FaceMesh,
    MeshRefinedDetector,
    invert_points,
    mesh_onnx_path,
    mesh_to_five,
    roi_transform,
)
from realtime.faces.retinaface import RetinaFaceDetector, embedded_onnx_path
from realtime.types import Detection


@pytest.fixture(scope="module")
def mesh_file(face_landmark_tflite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("face-mesh") / "face_landmark.tflite"
    shutil.copyfile(face_landmark_tflite, target)
    return target


@pytest.fixture(scope="module")
def mesh(mesh_file: Path) -> FaceMesh:
    return FaceMesh(OnnxRuntimeEngine(mesh_onnx_path(mesh_file), threads=2))


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> RetinaFaceDetector:
    path = embedded_onnx_path(tmp_path_factory.mktemp("derived"))
    return RetinaFaceDetector(OnnxRuntimeEngine(path, threads=2))


def test_mesh_to_five_uses_the_listed_points() -> None:
    points = np.zeros((468, 3))
    points[list(RIGHT_EYE), :2] = (10, 20)
    points[list(LEFT_EYE), :2] = (30, 20)
    points[4, :2], points[61, :2], points[291, :2] = (20, 30), (12, 40), (28, 40)
    assert mesh_to_five(points).tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]
    with pytest.raises(ValueError, match="468"):
        mesh_to_five(np.zeros((68, 2)))


def test_roi_levels_the_eye_line_and_inverts() -> None:
    box = np.array([100, 100, 200, 220], np.float32)
    eyes = np.array([[120, 150], [180, 120], [0, 0], [0, 0], [0, 0]], np.float32)
    matrix = roi_transform(box, eyes)
    crop_eyes = eyes[:2] @ matrix[:, :2].T + matrix[:, 2]
    assert crop_eyes[0, 1] == pytest.approx(crop_eyes[1, 1])  # horizontal in the crop
    assert crop_eyes[0, 0] < crop_eyes[1, 0]
    centre = np.array([[150.0, 160.0]]) @ matrix[:, :2].T + matrix[:, 2]
    assert centre[0].tolist() == pytest.approx([96, 96])
    side = 1.2 * 120  # 1.2 × the box's longer side spans the 192 px crop
    assert float(np.hypot(matrix[0, 0], matrix[0, 1])) == pytest.approx(192 / side)
    assert np.allclose(invert_points(matrix, crop_eyes), eyes[:2], atol=1e-6)


@pytest.mark.parametrize("angle", [0, 40, -40])
def test_mesh_points_hold_under_tilt(angle: float, astronaut_bgr: np.ndarray,
                                     boxes: RetinaFaceDetector, mesh: FaceMesh) -> None:
    """Rotate the photo; the mesh's points are the upright ones rotated (≤ 6 % of the
    inter-ocular distance), which RetinaFace's own points are not held to."""
    upright = mesh.refine(astronaut_bgr, boxes.detect(astronaut_bgr))
    assert len(upright) == 1
    matrix = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
    rotated = cv2.warpAffine(astronaut_bgr, matrix, (512, 512))
    found = mesh.refine(rotated, boxes.detect(rotated))
    assert len(found) == 1
    want = upright[0].landmarks @ matrix[:, :2].T + matrix[:, 2]
    iod = float(np.linalg.norm(want[0] - want[1]))
    error = np.linalg.norm(found[0].landmarks - want, axis=1).mean() / iod
    assert error < 0.06


def test_presence_drops_a_box_without_a_face(astronaut_bgr: np.ndarray, mesh: FaceMesh
                                             ) -> None:
    wall = np.full((300, 300, 3), (90, 120, 150), np.uint8)
    fake = Detection(np.array([50, 50, 200, 200], np.float32), 0.9,
                     np.array([[90, 100], [160, 100], [125, 130], [95, 160], [155, 160]],
                              np.float32))
    assert mesh.run(wall, fake.box, fake.landmarks).presence < 0.5
    assert mesh.refine(wall, [fake]) == []


def test_refined_detector_keeps_boxes_and_tuning(boxes: RetinaFaceDetector, mesh: FaceMesh,
                                                 t1_bgr: np.ndarray) -> None:
    refined = MeshRefinedDetector(boxes, mesh)
    assert refined.name == "retinaface+mesh"
    refined.detect_width = 1280
    refined.set_score_threshold(0.6)
    assert (boxes.detect_width, boxes.threshold) == (1280, 0.6)
    found = refined.detect(t1_bgr)
    plain = boxes.detect(t1_bgr)
    assert len(found) == 6
    assert {tuple(d.box) for d in found} == {tuple(d.box) for d in plain}
    boxes.detect_width, boxes.threshold = 640, 0.5


def test_converted_file_rebuilt_when_its_record_does_not_match(mesh_file: Path) -> None:
    onnx_path = mesh_onnx_path(mesh_file)
    record = onnx_path.with_name(onnx_path.name + ".json")
    stamp = onnx_path.stat().st_mtime_ns
    assert mesh_onnx_path(mesh_file) == onnx_path and onnx_path.stat().st_mtime_ns == stamp
    onnx_path.write_bytes(b"tampered")
    mesh_onnx_path(mesh_file)
    assert json.loads(record.read_text())["onnx_sha256"] != ""
    import onnx

    onnx.checker.check_model(onnx.load(str(onnx_path)))  # rebuilt, valid again
