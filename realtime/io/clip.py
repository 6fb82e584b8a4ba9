"""The fixed synthetic clip that ``swapcam bench`` measures the pipeline on.

Three faces of insightface's ``t1.jpg`` (part of the runtime install, so ``bench`` works
without the dev extras) are pasted with soft edges onto a textured
background and move with sinusoidal paths, a slight rotation and scale change, under
a slowly changing global light. Every frame is a pure function of its index, so each
run and each machine sees the same clip; frames are rendered on demand (about the cost
of decoding a camera's MJPEG frame) instead of held in memory (a 1080p loop would need
gigabytes).

``ClipSource`` implements the pipeline's ``FrameSource``: paced at ``fps`` like a
camera, or unpaced, where a new frame is made as soon as the pipeline has taken the
previous one (``ready`` callback): maximum throughput without a busy loop.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from realtime.types import Frame

CLIP_SECONDS = 4.0  # every motion period divides this: the clip loops seamlessly


class ClipError(RuntimeError):
    """A package face image could not be found or read."""


@dataclass(frozen=True)
class _Actor:
    """One pasted face: its patch (BGR + alpha) and its motion, in frame fractions."""

    patch: np.ndarray
    alpha: np.ndarray  # float32 (h, w) in [0, 1]
    height: float  # patch height as a fraction of the frame height
    centre: tuple[float, float]
    amplitude: tuple[float, float]
    periods: tuple[float, float]  # seconds, x and y
    angle_deg: float
    phase: float


def _soft_alpha(h: int, w: int) -> np.ndarray:
    """An elliptical mask with a wide feather, so pasted faces have no hard edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return np.clip((1.0 - r) / 0.35, 0.0, 1.0).astype(np.float32)


def _t1() -> np.ndarray:
    """insightface's t1.jpg (1280×886, six people): the runtime install ships it, unlike
    scikit-image's and matplotlib's sample portraits (dev extras only)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise ClipError("insightface is not installed: the clip's faces come from its t1.jpg")
    path = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        raise ClipError(f"could not read {path}")
    return image


t1_image = _t1  # public name: the enhancer's FP16 check enhances the same package faces


def source_portrait() -> np.ndarray:
    """A head-and-shoulders crop of t1.jpg's right-most face (not one of the clip's
    faces), enlarged: the identity ``bench`` swaps in."""
    crop = _t1()[220:470, 1090:1275]
    return cv2.resize(crop, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)


def _actors(count: int) -> list[_Actor]:
    # Crops around each face (head and some hair); sizes chosen so the embedded
    # detector finds every face at 640×480.
    t1 = _t1()
    crops = [
        (t1[220:430, 440:630], 0.62, (0.45, 0.48), (0.10, 0.05), (4.0, 2.0), 8.0),
        (t1[10:230, 880:1070], 0.5, (0.78, 0.42), (0.06, 0.06), (2.0, 4.0), 6.0),
        (t1[300:520, 690:870], 0.34, (0.10, 0.40), (0.03, 0.08), (4.0, 4.0 / 3.0), 5.0),
    ]
    actors = []
    for i, (patch, height, centre, amp, periods, angle) in enumerate(crops[:count]):
        h, w = patch.shape[:2]
        actors.append(_Actor(np.ascontiguousarray(patch), _soft_alpha(h, w), height, centre,
                             amp, periods, angle, phase=i * 1.3))
    return actors


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """A soft, low-saturation texture plus a gradient: something for optical flow to
    ignore, nothing a face detector would mistake for a face."""
    rng = np.random.default_rng(seed)
    grid = (max(2, height // 40), max(2, width // 40))
    grey = rng.integers(70, 180, grid, dtype=np.uint8)
    tint = rng.integers(-20, 20, (*grid, 3))
    small = np.clip(grey[:, :, None].astype(np.int32) + tint, 0, 255).astype(np.uint8)
    bg = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(0.75, 1.05, width, dtype=np.float32)[None, :, None]
    return np.clip(bg.astype(np.float32) * ramp, 0, 255).astype(np.uint8)


class SyntheticClip:
    """Renders frame ``i`` of the clip at ``width``×``height`` (30 motion fps)."""

    def __init__(self, width: int, height: int, *, faces: int = 3, seed: int = 0,
                 motion_fps: float = 30.0) -> None:
        if width < 64 or height < 64:
            raise ValueError(f"clip size: expected at least 64×64, got {width}×{height}")
        if not 1 <= faces <= 3:
            raise ValueError(f"clip faces: expected 1..3, got {faces}")
        self.width, self.height, self.motion_fps = width, height, motion_fps
        self._bg = _background(width, height, seed)
        self._actors = _actors(faces)
        self.length = round(CLIP_SECONDS * motion_fps)

    def render(self, index: int) -> np.ndarray:
        t = (index % self.length) / self.motion_fps
        out = self._bg.copy()
        for actor in self._actors:
            self._paste(out, actor, t)
        gain = 1.0 + 0.18 * math.sin(2 * math.pi * t / CLIP_SECONDS)  # light changes
        cv2.convertScaleAbs(out, dst=out, alpha=gain)
        return out

    def _paste(self, out: np.ndarray, a: _Actor, t: float) -> None:
        H, W = out.shape[:2]
        ph, pw = a.patch.shape[:2]
        scale = a.height * H / ph * (1.0 + 0.06 * math.sin(2 * math.pi * t / 2.0 + a.phase))
        cx = W * (a.centre[0] + a.amplitude[0] * math.sin(2 * math.pi * t / a.periods[0] + a.phase))
        cy = H * (a.centre[1] + a.amplitude[1] * math.sin(2 * math.pi * t / a.periods[1] + a.phase))
        angle = a.angle_deg * math.sin(2 * math.pi * t / CLIP_SECONDS * 2 + a.phase)
        m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
        m[:, 2] += (cx - pw / 2, cy - ph / 2)
        # Render only the patch's bounding box: cost scales with the face, not the frame.
        corners = np.array([[0, 0], [pw, 0], [0, ph], [pw, ph]], np.float64) @ m[:, :2].T + m[:, 2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 <= x0 or y1 <= y0:
            return
        m_roi = m.copy()
        m_roi[:, 2] -= (x0, y0)
        size = (int(x1 - x0), int(y1 - y0))
        face = cv2.warpAffine(a.patch, m_roi, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(a.alpha, m_roi, size, flags=cv2.INTER_LINEAR)
        roi = out[y0:y1, x0:x1]
        roi[:] = cv2.blendLinear(face, roi, alpha, 1.0 - alpha)


class Renderer(Protocol):
    def render(self, index: int) -> np.ndarray: ...


class ClipSource:
    """A :class:`SyntheticClip` as a frame source, paced like a camera or unpaced."""

    def __init__(self, width: int, height: int, *, fps: float = 30.0, paced: bool = True,
                 faces: int = 3, seed: int = 0,
                 ready: Callable[[], bool] | None = None,
                 clip: Renderer | None = None, label: str | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.width, self.height, self.paced, self.faces, self.seed = (
            width, height, paced, faces, seed)
        self._fps = fps
        self.ready = ready
        # another clip (anything with ``render(index)``), e.g. the talking clip
        self._clip: Renderer | None = clip
        self._label = label
        self._index = 0
        self._due: float | None = None
        self._closed = threading.Event()

    @property
    def fps(self) -> float:
        return self._fps

    def open(self) -> None:
        if self._clip is None:
            self._clip = SyntheticClip(self.width, self.height, faces=self.faces, seed=self.seed)
        self._closed.clear()
        self._due = None

    def read(self) -> Frame | None:
        if self._clip is None:
            raise RuntimeError("ClipSource: call open() before read()")
        if self.paced:
            now = time.monotonic()
            due = now if self._due is None else self._due
            if due > now and self._closed.wait(due - now):
                return None
            # fixed grid; when late by more than a frame, restart from now (no burst)
            self._due = due + 1.0 / self._fps if now <= due + 1.0 / self._fps \
                else now + 1.0 / self._fps
        elif self.ready is not None:
            while not self.ready():
                if self._closed.wait(0.0005):
                    return None
        # Stamped before rendering, as a camera stamps exposure before decoding: the
        # render cost counts as capture time and as latency.
        captured_ns = time.monotonic_ns()
        image = self._clip.render(self._index)
        frame = Frame(self._index, captured_ns, image)
        self._index += 1
        return frame

    def close(self) -> None:
        self._closed.set()

    def describe(self) -> str:
        pacing = f"{self._fps:g} fps" if self.paced else "unpaced"
        if self._label is not None:
            return f"{self._label} {self.width}×{self.height} ({pacing})"
        return f"synthetic clip {self.width}×{self.height} ({self.faces} faces, {pacing})"
