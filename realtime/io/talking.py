"""A talking-head clip made from one face photo: the built-in input of ``bench --motion``.

The photo's face is animated with smooth backward warps around its five landmarks: the
jaw opens and closes in syllable-like bursts (the gap that opens between the lips is
shaded dark, as an open mouth is), the eyes blink (the upper lid skin slides down over
the eye) every few seconds, the brows rise now and then, and the whole head drifts,
turns and nods slowly. Every frame is a pure function of its index, so each run sees the
same clip. The photo is placed on a plain background at ``width``×``height``.

Landmarks come from the caller (five points in the photo: eyes, nose tip, mouth
corners), so this module knows nothing of face detection.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from realtime.io.clip import ClipSource

TALK_SECONDS = 6.0  # the clip loops seamlessly after this


def _bump(t: float, centre: float, width: float) -> float:
    """A smooth 0→1→0 pulse of total ``width`` seconds centred at ``centre``."""
    x = (t - centre) / (width / 2.0)
    return 0.5 * (1.0 + math.cos(math.pi * x)) if abs(x) < 1.0 else 0.0


def jaw_opening(t: float) -> float:
    """0..1: syllables (~4 per second) in two phrases with a pause between them."""
    t = t % TALK_SECONDS
    phrase = _bump(t, 1.5, 2.8) + _bump(t, 4.5, 2.4)
    return max(0.0, math.sin(2 * math.pi * 3.7 * t)) ** 0.8 * min(1.0, 1.6 * phrase)


def blink(t: float) -> float:
    t = t % TALK_SECONDS
    return _bump(t, 1.1, 0.3) + _bump(t, 3.9, 0.3) + _bump(t, 5.2, 0.25)


def brow_raise(t: float) -> float:
    t = t % TALK_SECONDS
    return _bump(t, 2.4, 1.2) + 0.7 * _bump(t, 5.0, 0.9)


class TalkingClip:
    """Renders frame ``i`` (``fps`` motion frames a second).

    ``fit`` (default) scales and centres the photo's face; without it the photo is the
    frame as it is (``width``×``height``: a group photo where one person talks), and
    ``head_motion=False`` keeps everything but that face's own motion still, and
    ``head_radius`` (in inter-ocular distances) keeps the head's drift, turn and nod to
    that face's neighbourhood, fading out beyond it (the others in a group keep still)."""

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, width: int = 640,
                 height: int = 480, *, fps: float = 30.0, fit: bool = True,
                 head_motion: bool = True, head_radius: float | None = None) -> None:
        points = np.asarray(landmarks, np.float64).reshape(5, 2)
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise ValueError(f"talking clip photo: expected BGR uint8, got {photo.shape} "
                             f"{photo.dtype}")
        if width < 64 or height < 64:
            raise ValueError(f"talking clip size: expected at least 64×64, got "
                             f"{width}×{height}")
        self.width, self.height, self.fps = width, height, fps
        self.head_motion = head_motion
        self.length = round(TALK_SECONDS * fps)
        iod = float(np.hypot(*(points[1] - points[0])))
        if not iod > 4.0:
            raise ValueError(f"talking clip: the eyes are {iod:.1f} px apart; expected a face")
        if not fit and photo.shape[:2] != (height, width):
            raise ValueError(f"talking clip: a photo used as it is must be {width}×{height}, "
                             f"got {photo.shape[1]}×{photo.shape[0]}")
        # the face's inter-ocular distance becomes a quarter of the frame height
        scale = 0.25 * height / iod if fit else 1.0
        placed = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                            if scale < 1 else cv2.INTER_CUBIC)
        canvas = np.full((height, width, 3), (96, 104, 110), np.uint8)
        centre = points.mean(axis=0) * scale
        off = np.round(np.array([width / 2.0, height * 0.45]) - centre).astype(int) if fit \
            else np.zeros(2, int)
        self._paste(canvas, placed, off)
        self.base = canvas
        self.points = points * scale + off
        self.iod = iod * scale
        self._fields()
        self._head_weight: np.ndarray | None = None
        if head_radius is not None:
            centre = self.points.mean(axis=0)
            r = np.hypot(self._xs - centre[0], self._ys - centre[1]) / (head_radius * self.iod)
            self._head_weight = np.exp(-(r**4)).astype(np.float32)

    @staticmethod
    def _paste(canvas: np.ndarray, image: np.ndarray, off: np.ndarray) -> None:
        h, w = image.shape[:2]
        H, W = canvas.shape[:2]
        x0, y0 = max(off[0], 0), max(off[1], 0)
        x1, y1 = min(off[0] + w, W), min(off[1] + h, H)
        if x1 > x0 and y1 > y0:
            canvas[y0:y1, x0:x1] = image[y0 - off[1]:y1 - off[1], x0 - off[0]:x1 - off[0]]

    def _fields(self) -> None:
        """Per-motion displacement fields at full strength (backward: out(x) = in(x + d))."""
        h, w = self.height, self.width
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self._xs, self._ys = xs, ys
        p, iod = self.points, self.iod
        # the lips meet a little below the line through the mouth corners
        mouth = (p[3] + p[4]) / 2.0 + np.array([0.0, 0.06 * iod])
        half_width = max(float(np.hypot(*(p[4] - p[3]))) / 2.0, 0.2 * iod)
        # jaw: everything below the lips moves down (fading sideways and below the chin)
        side = np.exp(-((xs - mouth[0]) / (1.5 * half_width)) ** 2)
        below = np.clip((ys - mouth[1]) / (0.12 * iod), 0.0, 1.0)
        below *= np.clip(1.0 - (ys - (mouth[1] + 1.3 * iod)) / (0.5 * iod), 0.0, 1.0)
        self._jaw = (-(0.35 * iod) * side * below).astype(np.float32)  # max jaw drop
        # the lips' gap: where the jaw field stretches, an open mouth shows dark
        self._gap = np.clip(np.gradient(-self._jaw, axis=0) / (0.35 * iod / (0.12 * iod)),
                            0.0, 1.0).astype(np.float32)
        self._gap *= np.clip(1.0 - ((xs - mouth[0]) / (0.95 * half_width)) ** 2, 0.0, 1.0)
        self._gap = cv2.GaussianBlur(self._gap, (0, 0), 0.03 * iod)
        # blink: the skin above each eye slides down over it
        self._lid = np.zeros((h, w), np.float32)
        self._brow = np.zeros((h, w), np.float32)
        for eye in p[:2]:
            rx, ry = 0.28 * iod, 0.14 * iod
            r2 = ((xs - eye[0]) / rx) ** 2 + ((ys - eye[1]) / ry) ** 2
            self._lid -= (1.2 * ry) * np.clip(1.0 - r2, 0.0, 1.0)
            bx, by = 0.35 * iod, 0.2 * iod
            bc = eye[1] - 0.35 * iod
            b2 = ((xs - eye[0]) / bx) ** 2 + ((ys - bc) / by) ** 2
            self._brow += (0.09 * iod) * np.exp(-b2)  # sample below: the brow moves up

    def render(self, index: int) -> np.ndarray:
        t = (index % self.length) / self.fps
        jaw, lid, brow = jaw_opening(t), min(1.0, blink(t)), min(1.0, brow_raise(t))
        # slow head motion: drift, nod and turn (a similarity about the face centre); the
        # face's own motions are defined on the head, so they are sampled through it
        c = self.points.mean(axis=0)
        still = 0.0 if self.head_motion else 1.0
        angle = math.radians(4.0 * math.sin(2 * math.pi * t / TALK_SECONDS)) * (1 - still)
        shift = (0.12 * self.iod * math.sin(2 * math.pi * t / TALK_SECONDS * 2) * (1 - still),
                 0.06 * self.iod * math.sin(2 * math.pi * t / 3.0) * (1 - still))
        cos, sin = math.cos(angle), math.sin(angle)
        x = self._xs - c[0] - shift[0]
        y = self._ys - c[1] - shift[1]
        head_x = (cos * x + sin * y + c[0]).astype(np.float32)
        head_y = (-sin * x + cos * y + c[1]).astype(np.float32)
        if self._head_weight is not None:  # only this face's neighbourhood moves
            head_x = self._xs + self._head_weight * (head_x - self._xs)
            head_y = self._ys + self._head_weight * (head_y - self._ys)
        field = jaw * self._jaw + lid * self._lid + brow * self._brow
        dy = cv2.remap(field, head_x, head_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = cv2.remap(self.base, head_x, head_y + dy, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        if jaw > 0.0:
            gap = cv2.remap(self._gap, head_x, head_y, cv2.INTER_LINEAR)
            shade = 1.0 - 0.8 * np.clip(jaw * 1.5 * gap, 0.0, 1.0)
            frame = (frame.astype(np.float32) * shade[..., None]).astype(np.uint8)
        return frame


# t1.jpg's three faces side by side (see ``group_photo``), the middle one talks
GROUP_CROP = (100, 580, 230, 870)  # y0, y1, x0, x1: 640×480 at the photo's own scale


def group_photo() -> np.ndarray:
    """A 640×480 crop of insightface's t1.jpg (a real group photo) holding three faces."""
    from realtime.io.clip import _t1

    y0, y1, x0, x1 = GROUP_CROP
    return np.ascontiguousarray(_t1()[y0:y1, x0:x1])


def talking_source(clip: TalkingClip, *, fps: float = 30.0) -> ClipSource:
    """A :class:`TalkingClip` as a frame source paced at ``fps`` like a camera."""
    return ClipSource(clip.width, clip.height, fps=fps, clip=clip, label="talking clip")
