"""Keep face identities between detections, move faces cheaply, smooth landmarks.

Detection is slow on a CPU (dlib HOG: tens of milliseconds), so it runs every
``detect_every`` frames or when tracking is lost, possibly on its own worker. In
between, each face moves with a similarity transform fitted to pyramidal Lucas-Kanade
optical flow of its landmarks plus a grid of points in its box, on a small grey copy
of the frame; a forward-backward check rejects bad points and marks a face lost when
too few remain. Detections arriving late (from a worker, computed on an older frame)
are first carried to the current frame with the same flow. Each track keeps its id by
greedy IoU matching against the tracks' current boxes, and its landmarks go through a
One Euro filter: strong smoothing when still (no jitter), little lag when moving.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.types import Detection, Face

GRID = 4  # GRID × GRID points inside each box, besides the 5 landmarks

Landmarker = Callable[[np.ndarray, list[Detection]], list[Detection]]


class OneEuroFilter:
    """The One Euro filter (Casiez et al., CHI 2012) over a whole array at once.

    The cutoff frequency rises with speed: ``cutoff = min_cutoff + beta * speed``;
    ``scale`` divides speeds so ``beta`` is independent of the face's size in pixels.
    """

    def __init__(self, min_cutoff: float = 0.5, beta: float = 20.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._dx is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:
            dt = 1.0 / 30.0  # same timestamp twice (e.g. a re-fed frame): assume a frame
        self._t = t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        # One cutoff for the whole face so its shape stays rigid while smoothing; the
        # speed of the points' mean (head motion), where landmark noise averages out.
        mean_dx = self._dx.reshape(-1, self._dx.shape[-1]).mean(axis=0) if self._dx.ndim > 1 \
            else self._dx
        speed = float(np.linalg.norm(mean_dx)) / max(scale, 1e-6)
        cutoff = self.min_cutoff + self.beta * speed
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1.0 - a) * self._x
        return self._x.copy()


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, float(x1 - x0)) * max(0.0, float(y1 - y0))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


# The grid's fractions of the box side and, per point, which column and row it takes
# (row-major, x fastest): made once, as this runs for every face on every frame.
_GRID_FRACTIONS = np.linspace(0.2, 0.8, GRID)
_GRID_COLUMNS = np.tile(np.arange(GRID), GRID)
_GRID_ROWS = np.repeat(np.arange(GRID), GRID)


def _grid_points(box: np.ndarray) -> np.ndarray:
    """GRID×GRID points over the inner part of a box (where the face texture is)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    xs = x0 + _GRID_FRACTIONS * (x1 - x0)
    ys = y0 + _GRID_FRACTIONS * (y1 - y0)
    points = np.empty((GRID * GRID, 2))
    points[:, 0] = xs[_GRID_COLUMNS]
    points[:, 1] = ys[_GRID_ROWS]
    return points


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _move_box(m: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Move a box with a similarity: its centre follows, its size scales."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    scale = math.hypot(m[0, 0], m[1, 0])
    c = _apply(m, centre[None])[0]
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return np.array([c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh], dtype=np.float32)


@dataclass
class Track:
    """One face followed across frames. ``landmarks`` raw, ``smoothed`` filtered."""

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    score: float
    filter: OneEuroFilter
    smoothed: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))
    missed: int = 0
    lost: bool = False
    age: int = 0

    def face(self) -> Face:
        shift = (self.smoothed - self.landmarks).mean(axis=0)
        box = (self.box + np.array([shift[0], shift[1], shift[0], shift[1]])).astype(np.float32)
        return Face(
            self.track_id,
            Detection(box, float(self.score), self.smoothed.astype(np.float32)),
        )


class FaceTracker:
    """Detections in, faces with stable ids out; optical flow in between.

    Call :meth:`update` once per frame with the frame's image and time, plus the
    detections when a detection ran (``detected_grey`` = :meth:`prepare` of the frame
    they were computed on, when that is an older frame).
    """

    def __init__(
        self,
        *,
        detect_every: int = 5,
        flow_width: int = 320,
        fb_threshold: float = 1.0,
        min_points: int = 5,
        max_missed: int = 1,
        iou_threshold: float = 0.2,
        smooth: bool = True,
        # Tuned on noisy landmarks (0.8 px) of a face 200 px wide: a still face's
        # jitter drops ~3.5x, a head moving at 140 px/s lags ~1.2 px rms.
        min_cutoff: float = 0.5,
        beta: float = 20.0,
        landmarker: Landmarker | None = None,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every: expected >= 1, got {detect_every}")
        self.detect_every = detect_every
        self.flow_width = flow_width
        self.fb_threshold = fb_threshold
        self.min_points = min_points
        self.max_missed = max_missed
        self.iou_threshold = iou_threshold
        self.smooth = smooth
        self.min_cutoff = min_cutoff
        self.beta = beta
        # Between detections, re-measures each flowed face's points on the frame (e.g.
        # FaceMesh's ``refine``); an empty answer marks the face lost.
        self.landmarker = landmarker
        self.tracks: list[Track] = []
        self._next_id = 1
        self._grey: np.ndarray | None = None
        self._scale = 1.0
        self._since_detection = 0
        self._ever_detected = False

    # ----------------------------------------------------------------- public
    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The small grey copy of ``image`` that flow runs on."""
        h, w = image.shape[:2]
        scale = min(1.0, self.flow_width / float(w))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (round(w * scale), round(h * scale)),
                              interpolation=cv2.INTER_AREA)
        return grey

    def needs_detection(self) -> bool:
        """True when the cadence says so, no face is tracked, or a face was lost."""
        if not self._ever_detected or not self.tracks:
            return True
        if any(t.lost for t in self.tracks):
            return True
        return self._since_detection >= self.detect_every - 1

    def reset(self) -> None:
        self.tracks = []
        self._grey = None
        self._since_detection = 0
        self._ever_detected = False

    def update(
        self,
        image: np.ndarray,
        t: float,
        detections: list[Detection] | None = None,
        *,
        grey: np.ndarray | None = None,
        detected_grey: np.ndarray | None = None,
    ) -> list[Face]:
        """Advance to this frame; returns the faces currently tracked (not lost)."""
        if grey is None:
            grey = self.prepare(image)
        self._scale = grey.shape[1] / float(image.shape[1])
        if self._grey is not None and self._grey.shape == grey.shape and self.tracks:
            self._flow_tracks(self._grey, grey)
        if detections is not None:
            if detected_grey is not None and detected_grey.shape == grey.shape:
                detections = self._carry(detections, detected_grey, grey)
            self._match(detections)
            self._since_detection = 0
            self._ever_detected = True
        else:
            self._since_detection += 1
            if self.landmarker is not None:
                self._relandmark(image)
        self._grey = grey
        for track in self.tracks:
            track.age += 1
            scale = float(track.box[2] - track.box[0])
            track.smoothed = (
                track.filter(track.landmarks, t, scale) if self.smooth
                else track.landmarks.astype(np.float64)
            )
        return [track.face() for track in self.tracks if not track.lost]

    # ---------------------------------------------------------------- private
    def _flow(
        self, prev: np.ndarray, cur: np.ndarray, groups: list[np.ndarray]
    ) -> list[np.ndarray | None]:
        """Fit one similarity per point group (full-res coordinates) from prev to cur."""
        if not groups:
            return []
        s = self._scale
        pts = (np.concatenate(groups) * s).astype(np.float32).reshape(-1, 1, 2)
        params = {"winSize": (15, 15), "maxLevel": 3,
                  "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **params)  # type: ignore[call-overload]
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **params)  # type: ignore[call-overload]
        fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
        good = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < self.fb_threshold)
        out: list[np.ndarray | None] = []
        start = 0
        for group in groups:
            sl = slice(start, start + len(group))
            start += len(group)
            ok = good[sl]
            if int(ok.sum()) < self.min_points:
                out.append(None)
                continue
            src = pts[sl].reshape(-1, 2)[ok] / s
            dst = nxt[sl].reshape(-1, 2)[ok] / s
            m, _inliers = cv2.estimateAffinePartial2D(
                src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0 / s
            )
            out.append(None if m is None else m.astype(np.float64))
        return out

    def _flow_tracks(self, prev: np.ndarray, cur: np.ndarray) -> None:
        live = [t for t in self.tracks if not t.lost]
        groups = [np.concatenate([t.landmarks, _grid_points(t.box)]) for t in live]
        for track, m in zip(live, self._flow(prev, cur, groups), strict=True):
            if m is None:
                track.lost = True
                continue
            track.landmarks = _apply(m, track.landmarks)
            track.box = _move_box(m, track.box)

    def _relandmark(self, image: np.ndarray) -> None:
        assert self.landmarker is not None
        for track in self.tracks:
            if track.lost:
                continue
            found = self.landmarker(image, [Detection(
                track.box, float(track.score), track.landmarks.astype(np.float32))])
            if not found:
                track.lost = True
                continue
            track.landmarks = found[0].landmarks.astype(np.float64)

    def _carry(
        self, detections: list[Detection], old: np.ndarray, cur: np.ndarray
    ) -> list[Detection]:
        """Move detections made on an older frame to the current one."""
        groups = [np.concatenate([d.landmarks, _grid_points(d.box)]) for d in detections]
        moved = []
        for det, m in zip(detections, self._flow(old, cur, groups), strict=True):
            if m is None:
                moved.append(det)
                continue
            moved.append(Detection(
                _move_box(m, det.box),
                det.score,
                _apply(m, det.landmarks.astype(np.float64)).astype(np.float32),
            ))
        return moved

    def _match(self, detections: list[Detection]) -> None:
        """Greedy IoU matching (best pairs first), then centre distance for leftovers."""
        pairs = []
        for ti, track in enumerate(self.tracks):
            for di, det in enumerate(detections):
                iou = box_iou(track.box, det.box)
                if iou >= self.iou_threshold:
                    pairs.append((iou, ti, di))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _iou, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._assign(self.tracks[ti], detections[di])
        # A lost track (flow failed during fast motion) may have drifted far from its
        # detection: accept the nearest centre within one face width.
        for ti, track in enumerate(self.tracks):
            if ti in used_t:
                continue
            best, best_d = -1, float("inf")
            c = (track.box[:2] + track.box[2:]) / 2
            for di, det in enumerate(detections):
                if di in used_d:
                    continue
                d = float(np.linalg.norm((det.box[:2] + det.box[2:]) / 2 - c))
                if d < best_d:
                    best, best_d = di, d
            if best >= 0 and best_d < float(track.box[2] - track.box[0]):
                used_t.add(ti)
                used_d.add(best)
                self._assign(track, detections[best])
        kept = []
        for ti, track in enumerate(self.tracks):
            if ti not in used_t:
                track.missed += 1
                track.lost = True
                if track.missed > self.max_missed:
                    continue
            kept.append(track)
        for di, det in enumerate(detections):
            if di not in used_d:
                kept.append(Track(
                    self._next_id,
                    det.box.astype(np.float32).copy(),
                    det.landmarks.astype(np.float64).copy(),
                    det.score,
                    OneEuroFilter(self.min_cutoff, self.beta),
                ))
                self._next_id += 1
        self.tracks = kept

    @staticmethod
    def _assign(track: Track, det: Detection) -> None:
        track.box = det.box.astype(np.float32).copy()
        track.landmarks = det.landmarks.astype(np.float64).copy()
        track.score = det.score
        track.missed = 0
        track.lost = False
