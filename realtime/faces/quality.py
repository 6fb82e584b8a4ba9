"""How well a swap "took": identity, pose and expression numbers for one face.

The metrics follow SimSwap's paper where its estimators are available here, and state
the proxy where they are not:

- **identity**: cosine of ArcFace recognition vectors (output crop vs the source photo).
  The meter prefers an encoder *other* than the one that drove the swap (a swap can fool
  its own encoder), see :func:`meter_encoder_name`.
- **pose**: the paper uses a pose estimator; the proxy is yaw/pitch/roll from
  ``cv2.solvePnP`` on the five landmarks against a generic 3-D five-point face, the error
  is the L2 distance in degrees between target and output.
- **expression**: the paper uses a 3-D face model's expression code; the proxy is the
  landmark residual left after removing the best similarity transform (so head pose,
  scale and position do not count), divided by the inter-ocular distance.
- **keep**: the plain landmark distance (no transform removed) over the inter-ocular
  distance, the live meter's "did the swap bend the face" number.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.faces.identity import ENCODER_MODELS, IdentityEncoder, l2_normalize
from realtime.types import Detection, SourceFace

if TYPE_CHECKING:
    from engines.base import Engine

log = logging.getLogger(__name__)

# A generic face's five points in millimetres (x right, y up, z towards the camera), in
# SCRFD order: eyes, nose tip, mouth corners. Typical anthropometric proportions.
FACE_MODEL_3D = np.array([
    [-32.0, 35.0, -30.0], [32.0, 35.0, -30.0], [0.0, 0.0, 0.0],
    [-26.0, -30.0, -28.0], [26.0, -30.0, -28.0]], dtype=np.float64)
# The meter's encoder per swap family: the *other* ArcFace when installed.
INDEPENDENT_ENCODERS: dict[str, str] = {
    "simswap-224": "arcface-w600k", "simswap-512": "arcface-w600k",
    "inswapper-128": "arcface-simswap",
}
# the IdentityEncoder family whose crop and normalisation each encoder model uses
_ENCODER_FAMILY = {"arcface-w600k": "inswapper-128", "arcface-simswap": "simswap-224"}


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] < 5:
        raise ValueError(f"landmarks: expected (N>=5, 2), got {p.shape}")
    return p[:, :2]


def interocular(points: np.ndarray) -> float:
    """Distance between the eye centres: the first two of five points, or the mesh's eye
    contours for 468 points."""
    p = _points(points)
    if p.shape[0] == 468:
        from realtime.faces.mesh import mesh_to_five

        p = mesh_to_five(p).astype(np.float64)
    return float(np.linalg.norm(p[1] - p[0]))


def landmark_keep(target: np.ndarray, output: np.ndarray) -> float:
    """Mean landmark distance between target and output over the target's inter-ocular
    distance (0: the swap kept every point where it was)."""
    t, o = _points(target), _points(output)
    if t.shape != o.shape:
        raise ValueError(f"landmarks: expected the same shapes, got {t.shape} and {o.shape}")
    iod = interocular(t)
    if iod <= 1e-6:
        raise ValueError("landmarks: the eyes coincide, no scale to normalise by")
    return float(np.linalg.norm(t - o, axis=1).mean() / iod)


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) taking ``source`` onto
    ``target``, as a 2×3 matrix (closed form: Umeyama)."""
    s, t = _points(source), _points(target)
    ms, mt = s.mean(axis=0), t.mean(axis=0)
    sc, tc = s - ms, t - mt
    cov = tc.T @ sc / len(s)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    var = float((sc**2).sum() / len(s))
    scale = float(np.trace(np.diag(d) @ sign) / var) if var > 0 else 1.0
    shift = mt - scale * rotation @ ms
    return np.hstack([scale * rotation, shift[:, None]])


def expression_error(target: np.ndarray, output: np.ndarray) -> float:
    """Residual landmark distance after the best similarity transform of the output onto
    the target, over the target's inter-ocular distance (the expression proxy)."""
    t, o = _points(target), _points(output)
    m = similarity_fit(o, t)
    moved = o @ m[:, :2].T + m[:, 2]
    return landmark_keep(t, moved)


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from five landmarks (the pose proxy): solvePnP
    against ``FACE_MODEL_3D`` with a pinhole camera whose focal length is the image
    width. ``image_size`` is (width, height)."""
    import cv2

    p = _points(points)
    if p.shape[0] == 468:
        from realtime.faces.mesh import mesh_to_five

        p = mesh_to_five(p).astype(np.float64)
    width, height = image_size
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    # image y points down, the model's y up: flip the model so the solution is upright
    model = FACE_MODEL_3D * np.array([1.0, -1.0, -1.0])
    ok, rvec, _ = cv2.solvePnP(model, p[:5].reshape(-1, 1, 2), camera, None,
                               flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        raise ValueError("head pose: solvePnP found no solution")
    rot, _ = cv2.Rodrigues(rvec)
    # ZYX Euler angles
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rot[2, 0]))))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return yaw, pitch, roll


def pose_error(target: np.ndarray, output: np.ndarray, image_size: tuple[int, int]) -> float:
    """L2 distance in degrees between the target's and the output's (yaw, pitch, roll)."""
    a = np.array(head_pose(target, image_size))
    b = np.array(head_pose(output, image_size))
    diff = (a - b + 180.0) % 360.0 - 180.0  # angles wrap
    return float(np.linalg.norm(diff))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64 = np.asarray(a, dtype=np.float64).reshape(-1)
    b64 = np.asarray(b, dtype=np.float64).reshape(-1)
    denom = float(np.linalg.norm(a64) * np.linalg.norm(b64))
    return float(a64 @ b64) / denom if denom > 0 else 0.0


def retrieval_top1(outputs: np.ndarray, sources: np.ndarray, truth: Sequence[int]) -> float:
    """Share of outputs whose most similar source (cosine) is the one they wear."""
    out = np.asarray(outputs, dtype=np.float64)
    src = np.asarray(sources, dtype=np.float64)
    if out.ndim != 2 or src.ndim != 2 or len(out) != len(truth) or len(out) == 0:
        raise ValueError(f"retrieval: expected (N, D) outputs with N truths and (S, D) "
                         f"sources, got {out.shape}, {len(truth)}, {src.shape}")
    out = out / np.linalg.norm(out, axis=1, keepdims=True)
    src = src / np.linalg.norm(src, axis=1, keepdims=True)
    nearest = np.argmax(out @ src.T, axis=1)
    return float(np.mean(nearest == np.asarray(truth)))


def meter_score(value: float) -> int:
    """A cosine as the 0–100 badge value (negative similarity shows as 0)."""
    return round(max(0.0, min(1.0, value)) * 100)


# ---------------------------------------------------------------- the meter's encoder

def meter_encoder_name(swap_model: str, installed: Callable[[str], bool]) -> tuple[str, bool]:
    """(encoder model, independent): the other ArcFace when ``installed(name)``, else the
    one that drove the swap (``independent`` False: the UI says so)."""
    other = INDEPENDENT_ENCODERS[swap_model]
    if installed(other):
        return other, True
    return ENCODER_MODELS[swap_model], False


def recognition_encoder(encoder_model: str, engine: Engine,
                        model_files: Sequence[Path] = ()) -> IdentityEncoder:
    """An ``IdentityEncoder`` used for ``identify`` only (recognition vectors). For w600k
    the swapper's ``emap`` is never applied, so an identity matrix stands in for it."""
    family = _ENCODER_FAMILY[encoder_model]
    emap = np.eye(512, dtype=np.float32) if family == "inswapper-128" else None
    return IdentityEncoder(family, engine, emap=emap, model_files=model_files)


def load_meter_encoder(swap_model: str, models_dir: Path, *, engine: str = "auto",
                       threads: int | None = 1) -> tuple[IdentityEncoder, str, bool]:
    """(encoder, its model name, independent) for the meter of ``swap_model``."""
    from engines.models import model_status
    from export.onnx import ensure_onnx
    from realtime.faces.identity import open_model_engine

    name, independent = meter_encoder_name(
        swap_model, lambda n: model_status(models_dir, n) in ("present", "verified"))
    path = ensure_onnx(models_dir, name)
    return (recognition_encoder(name, open_model_engine(path, engine, models_dir, threads),
                                (path,)), name, independent)


# ---------------------------------------------------------------- landmarks on a crop

def crop_landmarks(detect: Callable[[np.ndarray], list[Detection]], crop: np.ndarray,
                   mesh: object | None = None) -> np.ndarray | None:
    """Landmarks of the face filling an aligned crop: the mesh's 468 points when a
    FaceMesh is given, else the detector's five; ``None`` when no face is found. The crop
    is padded by half its size first (detectors miss faces touching the border)."""
    import cv2

    pad = crop.shape[0] // 2
    padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    found = detect(padded)
    if not found:
        return None
    best = max(found, key=lambda d: d.area)
    run = getattr(mesh, "run", None)
    if run is not None:
        points = np.asarray(run(padded, best.box, best.landmarks).points, np.float64)
    else:
        points = best.landmarks.astype(np.float64)
    return points - pad


# ---------------------------------------------------------------------- the live meter

@dataclass(frozen=True)
class FaceQuality:
    """The meter's newest numbers for one face (cosines in [-1, 1])."""

    identity: float          # output crop vs source
    before: float | None     # target vs source, before swapping
    keep: float | None       # landmark distance / inter-ocular (None: not measured)
    encoder: str             # the encoder model that measured
    independent: bool        # True when it is not the swap's own encoder
    measured_at: float       # time.monotonic()


class QualityMeter:
    """Measures swapped faces at most ``rate`` times a second; thread-safe reads.

    ``measure`` runs on the swap worker (never the frame path). Source vectors come from
    the source's own photos through the meter's encoder, once per source. On a slow
    machine the meter also takes at most ``share`` of the worker's time: after a
    measurement that took ``c`` seconds the next one waits ``c·(1−share)/share``, so the
    texture refresh rate loses at most about that share.
    """

    def __init__(self, encoder: IdentityEncoder, encoder_name: str, independent: bool, *,
                 rate: float = 3.0, detect: Callable[[np.ndarray], list[Detection]] | None = None,
                 mesh: object | None = None, max_age_s: float = 3.0,
                 share: float = 0.1) -> None:
        if rate <= 0:
            raise ValueError(f"meter rate: expected > 0 per second, got {rate}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"meter share: expected in (0, 1], got {share}")
        self.encoder = encoder
        self.encoder_name = encoder_name
        self.independent = independent
        self.interval = 1.0 / rate
        self.share = share
        self._gap = self.interval  # the wait before the next measurement
        self.detect = detect
        self.mesh = mesh
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._last = -math.inf
        self._results: dict[int, FaceQuality] = {}
        self._sources: dict[tuple[str, tuple[str, ...]], np.ndarray | None] = {}

    def due(self, now: float | None = None) -> bool:
        """True when the rate limit allows a measurement now (a cheap clock check)."""
        now = time.monotonic() if now is None else now
        return now - self._last >= self._gap

    def source_vector(self, source: SourceFace) -> np.ndarray | None:
        """The source's recognition vector in the meter encoder's space (photos averaged);
        None when it has no readable photo with a face."""
        key = (source.name, source.paths)
        if key in self._sources:
            return self._sources[key]
        from realtime.faces.sources import SourceImageError, read_image

        vectors = []
        for path in source.paths:
            try:
                image = read_image(Path(path))
            except SourceImageError as exc:
                log.warning("meter: %s", exc)
                continue
            found = self.detect(image) if self.detect is not None else []
            if found:
                best = max(found, key=lambda d: d.area)
                vectors.append(self.encoder.identify(image, best.landmarks))
        vector = l2_normalize(np.mean(vectors, axis=0)) if vectors else None
        self._sources[key] = vector
        return vector

    def measure(self, track_id: int, target_crop: np.ndarray, output_crop: np.ndarray,
                crop_points: np.ndarray, source: SourceFace) -> FaceQuality | None:
        """Measure one face: ``target_crop`` and ``output_crop`` are the aligned target
        and its swapped crop (BGR, same size), ``crop_points`` the five landmarks in crop
        pixels. Stores and returns the result (None when the source has no vector)."""
        started = self._last = time.monotonic()
        reference = self.source_vector(source)
        if reference is None:
            return None
        after = cosine(self.encoder.identify(output_crop, crop_points), reference)
        before = cosine(self.encoder.identify(target_crop, crop_points), reference)
        keep = None
        if self.detect is not None:
            a = crop_landmarks(self.detect, target_crop, self.mesh)
            b = crop_landmarks(self.detect, output_crop, self.mesh)
            if a is not None and b is not None and a.shape == b.shape:
                keep = landmark_keep(a, b)
        result = FaceQuality(after, before, keep, self.encoder_name, self.independent,
                             time.monotonic())
        self._last = result.measured_at  # the interval counts from the end of the work
        cost = result.measured_at - started
        self._gap = max(self.interval, cost * (1.0 - self.share) / self.share)
        with self._lock:
            self._results[track_id] = result
        return result

    def mark(self) -> None:
        """Start a new rate-limit interval (a measurement round begins)."""
        self._last = time.monotonic()

    def results(self, now: float | None = None) -> dict[int, FaceQuality]:
        """The newest result per track id, those older than ``max_age_s`` dropped."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for stale in [k for k, v in self._results.items()
                          if now - v.measured_at > self.max_age_s]:
                del self._results[stale]
            return dict(self._results)

    def summary(self) -> FaceQuality | None:
        """The mean over the faces measured recently (for a stats line)."""
        current = list(self.results().values())
        if not current:
            return None
        befores = [r.before for r in current if r.before is not None]
        keeps = [r.keep for r in current if r.keep is not None]
        return FaceQuality(
            float(np.mean([r.identity for r in current])),
            float(np.mean(befores)) if befores else None,
            float(np.mean(keeps)) if keeps else None,
            self.encoder_name, self.independent, max(r.measured_at for r in current))


def format_quality(q: FaceQuality | None) -> str:
    """``"id 63 (was 12) keep 0.04 by arcface-w600k"``; the same-encoder case is flagged."""
    if q is None:
        return ""
    text = f"id {meter_score(q.identity)}"
    if q.before is not None:
        text += f" (was {meter_score(q.before)})"
    if q.keep is not None:
        text += f" keep {q.keep:.2f}"
    return text + f" by {q.encoder}" + ("" if q.independent else " (the swap's own encoder)")
