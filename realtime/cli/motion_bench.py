"""``bench --motion``: how closely the shown face follows the person between two swaps.

Method. The real live pipeline (capture thread, detector, tracker, align, the async swap
worker, composite, output thread) runs on a talking clip (or any video) paced like a
camera, once per texture mode:

- ``static``: the newest swapped texture re-pasted with each frame's transform;
- ``flow``: the texture warped with the face's own motion since it was swapped;
- ``live_mouth``: flow plus the current frame's inner mouth.

With the default *passthrough* generator the texture is the target's own aligned crop,
refreshed ``refresh_hz`` times a second (each swap call is made to take 1/HZ s per face,
like a slow CPU generator), so the ideal output is the current frame itself. The error is
the mean absolute difference (0–255) between the shown frame and the current input frame
inside each pasted face region (paste weight > 0.5), averaged over the measured frames.
The texture update's cost is the time of each face's texture step per frame (ms; p50,
p95): wall time on the process thread, which includes waiting for the GIL and the cores
while the detector, the swap worker and the other threads run, and the process thread's
own CPU time (``time.thread_time``), the work itself on one core. fps in/out and drops
come from the pipeline's own counters.

``sharing``: the same pipeline on the bench clip with 1 and 3 faces and a generator that
takes ``G`` seconds per face: each face's first-texture latency (first seen → first
texture) and refresh interval, for the fair order (one face per call, the stalest first)
and the old one (every face in one call), side by side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from realtime.cli.stability_bench import (
    LoggedFadingMotion,
    StabilityMeter,
    hook_frames,
    region_weight,
)
from realtime.config import Settings
from realtime.frame.hold import HeldFaces
from realtime.frame.process import split_masked
from realtime.frame.textures import Texture, TextureStore
from realtime.io.sinks import NullSink
from realtime.pipeline import Pipeline
from realtime.stats import summarize

MODES: dict[str, dict[str, Any]] = {
    "static": {"texture": "static", "live_mouth": False},
    "flow": {"texture": "flow", "live_mouth": False},
    "live_mouth": {"texture": "flow", "live_mouth": True},
}


class PacedSwapper:
    """A swapper whose call takes at least ``seconds_per_face`` × faces (a slow CPU
    generator, for a chosen refresh rate); the swap itself is ``inner``'s."""

    def __init__(self, inner: Any, seconds_per_face: float) -> None:
        self.inner = inner
        self.seconds_per_face = seconds_per_face
        self.family = inner.family
        self.crop_size = inner.crop_size
        self.backend = f"{inner.backend}, paced"
        self._cancel = threading.Event()

    def swap(self, crops: Sequence[Any], identity: Any) -> list[Any]:
        self._cancel.clear()  # a stop cancels the call in progress only
        t0 = time.perf_counter()
        out = self.inner.swap(crops, identity)
        remaining = self.seconds_per_face * len(crops) - (time.perf_counter() - t0)
        if remaining > 0:
            self._cancel.wait(remaining)
        return out

    def cancel(self) -> None:
        self._cancel.set()


class _Probe:
    """The real processor, with the shown frame's face error measured in ``composite``
    (the only call that sees both the current frame and what is pasted)."""

    def __init__(self, inner: Any, stability: StabilityMeter | None = None,
                 motion: LoggedFadingMotion | None = None) -> None:
        self._inner = inner
        self.measuring = False
        self.errors: list[float] = []
        self.track_errors: dict[int, list[float]] = {}
        self.first_seen: dict[int, float] = {}
        self.stability = stability
        self.motion = motion

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def align(self, image: np.ndarray, faces: Sequence[Any]) -> list[Any]:
        now = time.monotonic()
        for face in faces:
            self.first_seen.setdefault(face.track_id, now)
        return list(self._inner.align(image, faces))

    def composite(self, image: np.ndarray, aligned: Sequence[Any],
                  swapped: Sequence[Any]) -> np.ndarray:
        out = self._inner.composite(image, aligned, swapped)
        states = self.motion.take_states() if self.motion is not None else []
        crops, masks = split_masked(aligned, swapped, self._inner.settings.mask != "box")
        masks = [m if isinstance(m, np.ndarray) or m is None else m.cpu().numpy()
                 for m in masks]
        if self.measuring:
            for i, (face, crop, mask) in enumerate(zip(aligned, crops, masks, strict=True)):
                error = face_error(out, image, np.asarray(face.matrix), int(crop.shape[0]),
                                   self._inner.settings.feather, mask)
                if error is not None:
                    self.errors.append(error)
                    if i < len(states):
                        self.track_errors.setdefault(states[i][0], []).append(error)
        if self.stability is not None:
            pasted = [(np.asarray(f.matrix), int(c.shape[0]), m)
                      for f, c, m in zip(aligned, crops, masks, strict=True)]
            self.stability.faces(image, out, pasted, self._inner.settings.feather, states)
        return out


def face_error(shown: np.ndarray, current: np.ndarray, matrix: np.ndarray, size: int,
               feather: float, face_mask: np.ndarray | None = None) -> float | None:
    """Mean |shown − current| (0–255, over pixels and channels) where the paste weight of
    the face at ``matrix`` is above 0.5; None when no pixel is."""
    found = region_weight(matrix, size, shown.shape, feather, face_mask)
    if found is None:
        return None
    (x0, y0, x1, y1), inside = found
    diff = cv2.absdiff(shown[y0:y1, x0:x1], current[y0:y1, x0:x1])
    return float(diff[inside].mean())


class _TimedMotion(LoggedFadingMotion):
    def __init__(self, fade_s: float, **kw: Any) -> None:
        super().__init__(fade_s, **kw)
        self.measuring = False
        self.ms: list[float] = []  # wall time
        self.cpu_ms: list[float] = []  # this thread's CPU time

    def follow(self, track_id: int, texture: Texture, aligned_now: Any, **kw: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        out = super().follow(track_id, texture, aligned_now, **kw)
        if self.measuring:
            self.ms.append((time.perf_counter() - t0) * 1000.0)
            self.cpu_ms.append((time.thread_time() - c0) * 1000.0)
        return out


class _LoggedTextures(TextureStore):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, float]] = []  # (track, time a new texture arrived)

    def put(self, track_id: int, texture: Texture) -> None:
        super().put(track_id, texture)
        self.log.append((track_id, time.monotonic()))


@dataclass
class ModeResult:
    mode: str
    error: float | None
    error_samples: int
    ms_per_face_p50: float | None
    ms_per_face_p95: float | None
    cpu_ms_per_face_p50: float | None
    cpu_ms_per_face_p95: float | None
    fps_in: float
    fps_out: float
    drops: int
    swaps_per_s: float
    fallbacks: int
    fade_ms: float = 0.0
    pop: float | None = None
    switches: int = 0
    flicker: float | None = None
    flashes: int = 0
    frames: int = 0
    pop_peak: float | None = None
    pop_input_peak: float | None = None


def run_mode(make_source: Callable[[], Any], processor: Any, detector: Any,
             sources: Sequence[Any], settings: Settings, mode: str, *, seconds: float,
             warmup: float, people: int | None = None,
             hold_s: float | None = None) -> ModeResult:
    """One texture mode on a fresh pipeline (fresh tracks and textures), with the fade
    and refresh order of ``settings``; ``people``: the faces the clip shows (None: the
    most pasted in one frame so far), for ``flashes``."""
    settings = settings.with_changes(**MODES[mode])
    motion = _TimedMotion(settings.fade_ms / 1000.0)
    stability = StabilityMeter(people)
    probe = _Probe(processor, stability, motion)
    pipe = Pipeline(make_source(), probe, detector, sources, [NullSink()], settings)  # type: ignore[arg-type]
    pipe.motion = motion
    if hold_s is not None:
        pipe.held = HeldFaces(hold_s)
    hook_frames(pipe.tracker, stability.begin_frame)
    pipe.start()
    try:
        time.sleep(warmup)
        pipe.check()
        drops0 = pipe.stats().total_drops
        pipe.stats_recorder.reset()
        probe.measuring = motion.measuring = stability.measuring = True
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        probe.measuring = motion.measuring = stability.measuring = False
        stats = pipe.stats()
        rec = pipe.stats_recorder
        totals = {name: rec.total(name) for name in ("in", "out", "swap")}
    finally:
        pipe.stop(timeout=5.0)
        pipe.wait_stopped()
    cost = summarize(motion.ms) if motion.ms else None
    cpu = summarize(motion.cpu_ms) if motion.cpu_ms else None
    steady = stability.result()
    return ModeResult(
        mode, float(np.mean(probe.errors)) if probe.errors else None, len(probe.errors),
        None if cost is None else cost.p50, None if cost is None else cost.p95,
        None if cpu is None else cpu.p50, None if cpu is None else cpu.p95,
        totals["in"] / elapsed, totals["out"] / elapsed, stats.total_drops - drops0,
        totals["swap"] / elapsed, motion.fallbacks, settings.fade_ms, steady.pop,
        steady.switches, steady.flicker, steady.flashes, steady.frames, steady.pop_peak,
        steady.pop_input_peak)


@dataclass
class OrderResult:
    order: str  # "stalest" or "error"
    generator_s: float
    errors: dict[int, float]  # per track: mean face error while measured
    mean_error: float | None
    refreshes: dict[int, int]  # per track: new textures while measured
    longest_wait_s: dict[int, float]  # per track: the longest time between two of them
    texture: str = "flow"  # the texture mode shown: "flow" or "static"


def run_order(make_source: Callable[[], Any], processor: Any, detector: Any,
              sources: Sequence[Any], settings: Settings, order: str, *, seconds: float,
              warmup: float, generator_s: float, texture: str = "flow") -> OrderResult:
    """The ``texture`` mode (flow or static) on a clip where one of three people talks,
    refreshed in ``order``: each face's error, how often each was refreshed, the longest
    wait."""
    settings = settings.with_changes(faces="all", texture=texture, live_mouth=False,
                                     refresh_order=order)
    motion = _TimedMotion(settings.fade_ms / 1000.0, measure_static=order == "error")
    probe = _Probe(processor, None, motion)
    pipe = Pipeline(make_source(), probe, detector, sources, [NullSink()], settings)  # type: ignore[arg-type]
    pipe.motion = motion
    store = _LoggedTextures()
    pipe.textures = store
    pipe.start()
    try:
        time.sleep(warmup)
        pipe.check()
        start = time.monotonic()
        probe.measuring = True
        time.sleep(seconds)
        probe.measuring = False
        end = time.monotonic()
        pipe.check()
    finally:
        pipe.stop(timeout=5.0)
        pipe.wait_stopped()
    errors = {t: float(np.mean(e)) for t, e in sorted(probe.track_errors.items()) if e}
    refreshes, waits = {}, {}
    for track in errors:
        times = [t for k, t in store.log if k == track]
        inside = [t for t in times if start <= t <= end]
        refreshes[track] = len(inside)
        marks = [start, *inside, end]
        waits[track] = float(max(np.diff(marks)))
    mean = float(np.mean(list(errors.values()))) if errors else None
    return OrderResult(order, generator_s, errors, mean, refreshes, waits, texture)


@dataclass
class SharingResult:
    faces: int
    order: str  # "fair" (one face per call, stalest first) or "batch" (all in one call)
    generator_s: float
    first_texture_s: list[float]  # per face: first seen → first texture
    refresh_interval_s: list[float]  # per face: median time between its new textures


def run_sharing(make_source: Callable[[int], Any], processor: Any, detector: Any,
                sources: Sequence[Any], settings: Settings, faces: int, order: str, *,
                seconds: float, generator_s: float) -> SharingResult:
    """First-texture latency and refresh interval per face, from the start of a stream."""
    probe = _Probe(processor)
    if order == "batch":
        probe.batch_swaps = True  # type: ignore[attr-defined]
    pipe = Pipeline(make_source(faces), probe, detector, sources, [NullSink()],  # type: ignore[arg-type]
                    settings.with_changes(faces="all", texture="static"))
    store = _LoggedTextures()
    pipe.textures = store
    pipe.start()
    try:
        time.sleep(seconds)
        pipe.check()
    finally:
        pipe.stop(timeout=5.0)
        pipe.wait_stopped()
    first, intervals = [], []
    for track, seen in sorted(probe.first_seen.items()):
        times = [t for k, t in store.log if k == track]
        if not times:
            continue
        first.append(times[0] - seen)
        if len(times) > 1:
            intervals.append(float(np.median(np.diff(times))))
    return SharingResult(faces, order, generator_s, first, intervals)
