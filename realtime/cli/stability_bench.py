"""``bench --motion``'s stability figures: pop, switches, flicker, flashes.

For every pasted face and frame the meter takes two numbers inside the face's paste
region (paste weight > 0.5): the mean absolute change of the *shown* region from the
previous output frame, and the input's own change there from the previous input frame.

- ``pop``: at each texture change (the frames where the shown texture is replaced:
  from the first one showing the new texture to the end of its cross-fade; one frame
  without a fade), the mean shown change over those frames, divided by the track's mean
  input change over the run; averaged over the changes. 1.0: a texture change is no
  more visible than the motion itself.
- ``pop_peak``: the same with the largest shown change of those frames instead of their
  mean: stricter, since on a talking face the largest of several frames' motion alone is
  above the run's mean (``pop_input_peak``: that largest input change over the same
  frames, ÷ the same mean: what ``pop_peak`` would be if the change were invisible).
- ``switches``: the texture changes measured.
- ``flicker``: the p95 over faces and frames of |shown change − input change|.
- ``flashes``: frames that paste fewer faces than the clip's people (after they each
  had a texture): a real face showing through.

The occlusion clip for ``flashes``: the talking clip with a hand-sized skin-coloured
patch crossing the face now and then, and a detector that finds nothing for a few
calls in a row now and then (``OccludedSource``, ``MissingDetector``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from realtime.frame.composite import face_region, paste_mask, region_matrix
from realtime.frame.fade import FadingMotion
from realtime.frame.textures import Texture
from realtime.types import Frame


def region_weight(matrix: np.ndarray, size: int, shape: tuple[int, ...], feather: float,
                  face_mask: np.ndarray | None) -> tuple[tuple[int, int, int, int],
                                                         np.ndarray] | None:
    """The face's paste region (x0, y0, x1, y1) and where its paste weight is > 0.5."""
    region = face_region(matrix, size, shape)
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return None
    weight = cv2.warpAffine(paste_mask(size, matrix, feather, face_mask),
                            region_matrix(matrix, region), (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    inside = weight > 0.5
    return (region, inside) if inside.any() else None


def _change(a: np.ndarray, b: np.ndarray, region: tuple[int, int, int, int],
            inside: np.ndarray) -> float:
    x0, y0, x1, y1 = region
    return float(cv2.absdiff(a[y0:y1, x0:x1], b[y0:y1, x0:x1])[inside].mean())


@dataclass
class _Change:
    track: int
    shown: list[float] = field(default_factory=list)  # shown change per frame of it
    moved: list[float] = field(default_factory=list)  # the input's change in those frames


@dataclass
class StabilityResult:
    pop: float | None
    switches: int
    flicker: float | None
    flashes: int
    frames: int
    pop_peak: float | None = None
    pop_input_peak: float | None = None


class StabilityMeter:
    """Fed by the bench's probe on the process thread: ``begin_frame`` at each tracker
    update, ``faces`` at each composite (with each pasted face's texture change state)."""

    def __init__(self, people: int | None) -> None:
        self.people = people
        self.measuring = False
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # (input, shown)
        self._now_in: np.ndarray | None = None
        self._now_out: np.ndarray | None = None
        self._pasted = 0
        self._most = 0
        self.frames = 0
        self.flashes = 0
        self.samples: list[tuple[int | None, float, float]] = []  # (track, shown, input)
        self.changes: list[_Change] = []
        self._open: dict[int, _Change] = {}

    def begin_frame(self, image: np.ndarray) -> None:
        if self._now_in is not None:
            self._prev = (self._now_in, self._now_out if self._now_out is not None
                          else self._now_in)
            expected = self.people if self.people is not None else self._most
            if self.measuring:
                self.frames += 1
                self.flashes += int(self._most > 0 and self._pasted < expected)
            self._most = max(self._most, self._pasted)
        self._now_in, self._now_out, self._pasted = image, None, 0

    def faces(self, image: np.ndarray, out: np.ndarray,
              pasted: list[tuple[Any, int, np.ndarray | None]], feather: float,
              states: list[tuple[int, bool, bool]]) -> None:
        """``pasted``: (matrix, crop size, face mask) per face; ``states``: (track,
        changed this frame, still fading) for the first faces (the followed ones)."""
        self._now_out = out
        self._pasted += len(pasted)
        prev = self._prev
        if not self.measuring or prev is None:
            return
        for i, (matrix, size, mask) in enumerate(pasted):
            found = region_weight(np.asarray(matrix), size, out.shape, feather, mask)
            if found is None:
                continue
            shown = _change(out, prev[1], *found)
            moved = _change(image, prev[0], *found)
            track = states[i][0] if i < len(states) else None
            self.samples.append((track, shown, moved))
            if i >= len(states):
                continue
            track, changed, fading = states[i]
            if changed:
                self._open[track] = change = _Change(track)
                self.changes.append(change)
            if track in self._open:
                self._open[track].shown.append(shown)
                self._open[track].moved.append(moved)
                if not fading:
                    del self._open[track]

    def result(self) -> StabilityResult:
        moved: dict[int | None, list[float]] = {}
        for track, _, m in self.samples:
            moved.setdefault(track, []).append(m)
        measured = [(c, float(np.mean(moved[c.track]))) for c in self.changes
                    if c.shown and moved.get(c.track) and float(np.mean(moved[c.track])) > 0]

        def mean_of(values: list[float]) -> float | None:
            return float(np.mean(values)) if values else None

        flicker = [abs(s - m) for _, s, m in self.samples]
        return StabilityResult(
            mean_of([float(np.mean(c.shown)) / base for c, base in measured]),
            len(self.changes), float(np.percentile(flicker, 95)) if flicker else None,
            self.flashes, self.frames,
            pop_peak=mean_of([max(c.shown) / base for c, base in measured]),
            pop_input_peak=mean_of([max(c.moved) / base for c, base in measured]))


class LoggedFadingMotion(FadingMotion):
    """``FadingMotion`` that logs, per follow call, (track, a new texture shows from this
    frame, its fade goes on): the meter reads them in the composite that follows."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.states: list[tuple[int, bool, bool]] = []

    def follow(self, track_id: int, texture: Texture, aligned_now: Any, **kw: Any) -> Any:
        before = self._fades.get(track_id)
        changed = before is not None and before.shown is not texture
        out = super().follow(track_id, texture, aligned_now, **kw)
        after = self._fades.get(track_id)
        self.states.append((track_id, changed, after is not None and after.previous is not None))
        return out

    def take_states(self) -> list[tuple[int, bool, bool]]:
        states, self.states = self.states, []
        return states


class OccludedSource:
    """A frame source with a hand-sized patch crossing the face at ``centre`` for
    ``cross_s`` seconds every ``every_s`` seconds of the clip (by frame index)."""

    def __init__(self, inner: Any, centre: tuple[float, float], face_width: float, *,
                 every_s: float = 2.0, cross_s: float = 0.4) -> None:
        self.inner, self.centre, self.face_width = inner, centre, face_width
        self.every_s, self.cross_s = every_s, cross_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        t = frame.index / float(self.inner.fps)
        phase = (t % self.every_s) / self.cross_s
        if phase >= 1.0:
            return frame
        image = frame.image.copy()
        w = self.face_width
        x = self.centre[0] + (phase * 2.0 - 1.0) * 1.2 * w
        y = self.centre[1] + 0.1 * w * math.sin(math.pi * phase)
        axes = (round(0.45 * w), round(0.6 * w))
        cv2.ellipse(image, (round(x), round(y)), axes, 15.0, 0, 360, (120, 150, 205), -1)
        return Frame(frame.index, frame.captured_ns, image)


class MissingDetector:
    """The real detector, except that ``misses`` calls in a row find nothing every
    ``period`` calls (a detector miss, a face half hidden)."""

    def __init__(self, inner: Any, *, period: int = 12, misses: int = 3) -> None:
        if not 0 <= misses < period:
            raise ValueError(f"misses: expected 0..{period - 1}, got {misses}")
        self.inner, self.period, self.misses = inner, period, misses
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def detect(self, image: np.ndarray) -> list[Any]:
        self.calls += 1
        if self.calls % self.period >= self.period - self.misses:
            return []
        return list(self.inner.detect(image))


def hook_frames(tracker: Any, begin: Callable[[np.ndarray], None]) -> None:
    """Call ``begin(image)`` at each ``tracker.update`` (one per processed frame)."""
    update = tracker.update

    def hooked(image: np.ndarray, *args: Any, **kw: Any) -> Any:
        begin(image)
        return update(image, *args, **kw)

    tracker.update = hooked
