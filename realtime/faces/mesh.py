"""FaceMesh landmarks: five tilt-robust points inside a detector's box.

MediaPipe's FaceMesh (``face_landmark.tflite``, Apache-2.0) regresses 468 points on a
192×192 RGB crop in [0, 1] plus a face-presence logit. The crop is a square 1.2× the
detector's box, rotated so the detector's eye line is horizontal: the network sees an
upright face at any in-plane tilt, which is why its points hold under tilt where the
detectors' own five points drift. The .tflite runs on our engines after conversion to
ONNX (``export.tflite_onnx``); the converted file is cached next to the model and rebuilt
whenever its record does not name the exact source file, converter version and result.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.base import Engine
from realtime.faces.boxes import DetectorError
from realtime.types import Detection

log = logging.getLogger(__name__)

MESH_MODEL = "face-mesh"
INPUT_SIZE = 192
INPUT_NAME = "input_1"
POINTS_OUTPUT = "conv2d_20"
PRESENCE_OUTPUT = "conv2d_30"
ROI_SCALE = 1.2
MIN_PRESENCE = 0.5

# Eye contours of the 468-point mesh: the subject's right eye (image-left in a
# non-mirrored picture) first, as SCRFD orders its points.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
NOSE_TIP = 4
MOUTH_RIGHT = 61   # image-left mouth corner
MOUTH_LEFT = 291


def mesh_to_five(points: np.ndarray) -> np.ndarray:
    """468 mesh points (468, 2+) → the five SCRFD points, float32 (5, 2)."""
    if points.ndim != 2 or points.shape[0] != 468 or points.shape[1] < 2:
        raise ValueError(f"points: expected (468, 2 or 3), got {points.shape}")
    xy = points[:, :2].astype(np.float64)
    five = np.stack([xy[list(RIGHT_EYE)].mean(axis=0), xy[list(LEFT_EYE)].mean(axis=0),
                     xy[NOSE_TIP], xy[MOUTH_RIGHT], xy[MOUTH_LEFT]])
    return five.astype(np.float32)


def roi_transform(box: np.ndarray, landmarks: np.ndarray, *, scale: float = ROI_SCALE,
                  size: int = INPUT_SIZE) -> np.ndarray:
    """2×3 affine taking frame pixels to crop pixels: a square ``scale``× the box around
    its centre, rotated so the line from the first to the second eye is horizontal."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = scale * max(x2 - x1, y2 - y1)
    if side <= 0:
        raise ValueError(f"box: expected a positive size, got {box}")
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    eye_dx, eye_dy = (float(v) for v in landmarks[1] - landmarks[0])
    angle = math.atan2(eye_dy, eye_dx)
    k = size / side
    cos, sin = math.cos(angle) * k, math.sin(angle) * k
    # crop = R(-angle)·k·(p - c) + size/2
    return np.array([[cos, sin, size / 2 - cos * cx - sin * cy],
                     [-sin, cos, size / 2 + sin * cx - cos * cy]], dtype=np.float64)


def invert_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Crop pixels → frame pixels through the inverse of ``roi_transform``'s matrix."""
    inverse = cv2.invertAffineTransform(matrix)
    return points[:, :2] @ inverse[:, :2].T + inverse[:, 2]


@dataclass(frozen=True)
class MeshResult:
    points: np.ndarray    # (468, 2) frame pixels
    presence: float       # probability that the crop holds a face
    five: np.ndarray      # (5, 2) SCRFD order, frame pixels


class FaceMesh:
    """FaceMesh on an ``Engine`` (the ONNX conversion of ``face_landmark.tflite``)."""

    def __init__(self, engine: Engine, *, min_presence: float = MIN_PRESENCE) -> None:
        names_in = [spec.name for spec in engine.inputs]
        names_out = {spec.name for spec in engine.outputs}
        if names_in != [INPUT_NAME] or not {POINTS_OUTPUT, PRESENCE_OUTPUT} <= names_out:
            raise DetectorError(f"FaceMesh: expected input {INPUT_NAME} and outputs "
                                f"{POINTS_OUTPUT}, {PRESENCE_OUTPUT}; got {names_in} and "
                                f"{sorted(names_out)}")
        self.engine = engine
        self.min_presence = min_presence

    def run(self, image: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> MeshResult:
        """The mesh of the face in ``box`` whose eyes are ``landmarks[0:2]`` (BGR frame)."""
        matrix = roi_transform(box, landmarks)
        crop = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        blob = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        out = self.engine.run({INPUT_NAME: blob})
        raw = np.asarray(out[POINTS_OUTPUT], dtype=np.float64).reshape(468, 3)
        logit = float(np.asarray(out[PRESENCE_OUTPUT]).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))
        points = invert_points(matrix, raw)
        return MeshResult(points=points, presence=presence, five=mesh_to_five(points))

    def refine(self, image: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """Detections with their five points replaced by the mesh's; faces the mesh does
        not see (presence below ``min_presence``) are dropped as false positives."""
        refined = []
        for det in detections:
            result = self.run(image, det.box, det.landmarks)
            if result.presence < self.min_presence:
                log.debug("dropping a detection at %s: mesh presence %.2f", det.box,
                          result.presence)
                continue
            refined.append(Detection(box=det.box, score=det.score, landmarks=result.five))
        return refined


class MeshRefinedDetector:
    """A detector's boxes with FaceMesh's landmarks (``name`` says both)."""

    def __init__(self, detector: object, mesh: FaceMesh) -> None:
        self.detector = detector
        self.mesh = mesh
        self.name = f"{getattr(detector, 'name', 'detector')}+mesh"

    @property
    def detect_width(self) -> int:
        return int(getattr(self.detector, "detect_width", 0))

    @detect_width.setter
    def detect_width(self, value: int) -> None:
        if hasattr(self.detector, "detect_width"):
            self.detector.detect_width = value  # type: ignore[attr-defined]

    def set_score_threshold(self, score: float) -> None:
        setter = getattr(self.detector, "set_score_threshold", None)
        if setter is not None:
            setter(score)

    def detect(self, image: np.ndarray) -> list[Detection]:
        detections = self.detector.detect(image)  # type: ignore[attr-defined]
        return self.mesh.refine(image, list(detections))


# ---------------------------------------------------------------- the converted file

RECORD_SUFFIX = ".json"


def mesh_onnx_path(tflite_path: Path) -> Path:
    """The converted ONNX file for a verified ``face_landmark.tflite``, converted on first
    use and re-converted when the record beside it does not match (source sha256,
    converter version, ONNX sha256)."""
    from engines.fileio import sha256_file, write_atomic
    from export.tflite_onnx import CONVERTER_VERSION, convert_tflite_file

    tflite_path = Path(tflite_path)
    onnx_path = tflite_path.with_suffix(".onnx")
    record_path = onnx_path.with_name(onnx_path.name + RECORD_SUFFIX)
    source = sha256_file(tflite_path)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if (record.get("source_sha256") == source
                and record.get("converter") == CONVERTER_VERSION
                and onnx_path.is_file() and record.get("onnx_sha256") == sha256_file(onnx_path)):
            return onnx_path
    except (OSError, ValueError, AttributeError):
        pass
    log.info("converting %s to ONNX", tflite_path.name)
    built_from = convert_tflite_file(tflite_path, onnx_path)
    if built_from != source:
        raise DetectorError(f"{tflite_path} changed while it was being converted")
    record = {"source_sha256": source, "converter": CONVERTER_VERSION,
              "onnx_sha256": sha256_file(onnx_path)}
    write_atomic(record_path, json.dumps(record, indent=2).encode("utf-8"))
    return onnx_path
