"""Between two swaps, on the real pipeline (embedded RetinaFace, tracker, align,
composite, threads): ``--texture static`` shows exactly the plain texture, and a slow
swapper takes one face per call, the face that most needs it first."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame.process import FrameProcessor
from realtime.io.clip import ClipSource, source_portrait
from realtime.io.sinks import NullSink
from realtime.io.talking import TalkingClip, talking_source
from realtime.pipeline import Pipeline
from realtime.session import passthrough_source
from realtime.types import AlignedFace, SwapResult

FAMILY = "simswap-224"


class ConstantSwapper:
    """A slow generator whose output is known: one flat colour per call count parity."""

    family = FAMILY
    crop_size = 224
    backend = "fake"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.batches: list[int] = []

    def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
        self.batches.append(len(crops))
        time.sleep(self.delay)
        return [np.full((224, 224, 3), (40, 200, 90), np.uint8) for _ in crops]


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_detector("retinaface", tmp_path_factory.mktemp("models"))


def _collect(pipe: Pipeline, seconds: float) -> list[SwapResult]:
    results: list[SwapResult] = []
    seen = -1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        version, result = pipe.preview()
        if result is not None and version != seen and result.swapped:
            results.append(result)
            seen = version
        time.sleep(0.02)
        pipe.check()
    return results


def test_static_texture_frames_are_the_plain_texture_pasted(detector: Any) -> None:
    found = detector.detect(source_portrait())
    clip = TalkingClip(source_portrait(), found[0].landmarks, 640, 480)
    settings = Settings(swap_mode="async", texture="static", color_match=False,
                        quality_meter=False, mask="box", detect_every=2)
    processor = FrameProcessor(ConstantSwapper(0.3), None, settings)  # type: ignore[arg-type]
    pipe = Pipeline(talking_source(clip, fps=20), processor, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    pipe.start()
    try:
        results = _collect(pipe, 2.5)
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert len(results) >= 3
    flat = np.full((224, 224, 3), (40, 200, 90), np.uint8)
    for r in results:
        aligned = processor.align(r.frame.image, list(r.faces))
        expected = processor.composite(r.frame.image, aligned, [flat] * len(aligned))
        assert np.array_equal(r.image, expected)
    assert pipe.stats().texture_fallbacks == 0


def test_a_flow_that_cannot_be_used_shows_the_plain_texture_and_is_counted(
        detector: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flow mode with a DIS that returns NaN: every shown frame falls back to the plain
    texture (test_motion checks it is the texture itself) and the stats count it."""
    from realtime.frame import motion

    class NanFlow:
        def calc(self, a: np.ndarray, b: np.ndarray, flow: object) -> np.ndarray:
            return np.full((*a.shape, 2), np.nan, np.float32)

    monkeypatch.setattr(motion, "_dis", NanFlow)
    found = detector.detect(source_portrait())
    clip = TalkingClip(source_portrait(), found[0].landmarks, 640, 480)
    settings = Settings(swap_mode="async", texture="flow", color_match=False,
                        quality_meter=False, mask="box", detect_every=2)

    class Passthrough(ConstantSwapper):
        def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
            time.sleep(self.delay)
            return [c.crop.copy() for c in crops]

    processor = FrameProcessor(Passthrough(0.3), None, settings)  # type: ignore[arg-type]
    pipe = Pipeline(talking_source(clip, fps=20), processor, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    pipe.start()
    try:
        results = _collect(pipe, 2.0)
        fallbacks = pipe.stats().texture_fallbacks
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert len(results) >= 3 and fallbacks >= len(results)


def test_a_slow_swapper_takes_one_face_per_call_stalest_first(detector: Any) -> None:
    settings = Settings(swap_mode="async", faces="all", color_match=False,
                        quality_meter=False, mask="box", detect_every=3,
                        refresh_order="stalest")
    swapper = ConstantSwapper(0.12)
    processor = FrameProcessor(swapper, None, settings)  # type: ignore[arg-type]
    calls: list[tuple[int, ...]] = []
    lock = threading.Lock()
    original = processor.swap_rows

    def recording(aligned: Any, sources: Any, tracks: Any = None) -> Any:
        with lock:
            calls.append(tuple(tracks or ()))
        return original(aligned, sources, tracks=tracks)

    processor.swap_rows = recording  # type: ignore[method-assign]
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=3), processor, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    pipe.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(calls) < 7:
            time.sleep(0.05)
            pipe.check()
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert len(calls) >= 7 and set(swapper.batches) == {1}
    first = [t[0] for t in calls[:6]]
    # the first three calls serve three different faces, then each again in turn
    assert len(set(first[:3])) == 3, first
    assert first[3:6] == first[:3], first


@pytest.mark.parametrize("order", ["error", "stalest"])
def test_the_error_order_measures_the_static_textures_misfit(detector: Any, order: str) -> None:
    """``--refresh-order error`` with the static texture: the live pipeline measures each
    shown texture's plain misfit for the planner (and only then: in turn, nothing)."""
    settings = Settings(swap_mode="async", faces="all", texture="static", color_match=False,
                        quality_meter=False, mask="box", detect_every=3, refresh_order=order)
    processor = FrameProcessor(ConstantSwapper(0.05), None, settings)  # type: ignore[arg-type]
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=3), processor, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    pipe.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(pipe.textures) < 3:
            time.sleep(0.05)
            pipe.check()
        time.sleep(1.0)  # frames showing all three textures
        pipe.check()
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert len(pipe.textures) >= 3  # a track may be re-found under a new id
    measured = pipe.motion.unexplained
    if order == "stalest":
        assert measured == {}
    else:
        assert len(measured) >= 2, measured
        assert all(np.isfinite(m) and m >= 0 for _, m in measured.values())


def test_bench_motion_reports_each_texture_mode(tmp_path: Path) -> None:
    """``bench --motion`` end to end on the built-in talking clip (passthrough): every
    mode's error and cost in the JSON, the flow texture closer to the current frame."""
    import json

    from main import main

    out = tmp_path / "motion.json"
    code = main(["--models-dir", str(tmp_path / "models"), "bench", "--motion",
                 "--seconds", "1.5", "--warmup", "1.5", "--refresh", "2", "--no-sharing",
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {"static", "flow", "live_mouth", "static+fade", "flow+fade", "live_mouth+fade",
            "occluded, hold 0 s", "occluded, hold 1 s"}
    assert set(report) == rows | {"settings", "sharing", "refresh_order"}
    for mode in ("static", "flow", "live_mouth", "flow+fade"):
        entry = report[mode]
        assert entry["error"] is not None and entry["error_samples"] > 0, mode
        assert entry["ms_per_face"] == entry["ms_per_face_p50"] is not None
        assert entry["cpu_ms_per_face_p50"] is not None
        assert entry["cpu_ms_per_face_p95"] >= entry["cpu_ms_per_face_p50"]
        assert entry["fps_out"] > 0
    assert report["flow"]["error"] < report["static"]["error"]
    # the stability figures: texture changes measured, fewer pops with the fade, and the
    # occlusion clip's flashes gone with the hold
    for mode in ("flow", "flow+fade"):
        assert report[mode]["switches"] >= 1 and report[mode]["pop"] is not None, mode
        assert report[mode]["flicker"] is not None and report[mode]["frames"] > 0, mode
    assert report["flow+fade"]["fade_ms"] == 250 and report["flow"]["fade_ms"] == 0
    assert report["occluded, hold 1 s"]["flashes"] <= report["occluded, hold 0 s"]["flashes"]
    assert report["settings"]["model"] == "passthrough"
    assert report["settings"]["refresh_hz"] == 2.0


def test_bench_motion_input_is_any_video(tmp_path: Path) -> None:
    import argparse

    import cv2

    from realtime.cli.bench_motion import _input

    video = tmp_path / "talk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 25, (160, 120))
    for i in range(5):
        writer.write(np.full((120, 160, 3), 40 * i, np.uint8))
    writer.release()
    make, note, clip = _input(argparse.Namespace(input=video, fps=25.0), detector=None)
    source = make()
    source.open()
    frame = source.read()
    source.close()
    assert frame is not None and frame.image.shape == (120, 160, 3) and "talk.avi" in note
    assert clip is None  # no occlusion rows on a video: where the face is is unknown
    with pytest.raises(ValueError, match="expected a video file"):
        _input(argparse.Namespace(input=tmp_path / "none.mp4", fps=25.0), detector=None)


class _MissingDetector:
    """The real detector, except that calls ``miss_from`` .. ``miss_from + misses - 1``
    find nothing (a hand over the face, a detector miss)."""

    def __init__(self, inner: Any, miss_from: int, misses: int) -> None:
        self.inner, self.miss_from, self.misses = inner, miss_from, misses
        self.name = inner.name
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Any]:
        self.calls += 1
        if self.miss_from <= self.calls < self.miss_from + self.misses:
            return []
        return list(self.inner.detect(image))


def test_no_unswapped_frame_while_detections_are_missed(detector: Any) -> None:
    """Three detections in a row find nothing: the tracker loses the face, then drops
    it, then finds it under a new id. Every frame after the first swapped one still
    shows a swapped face (held, then the source's texture at once)."""
    found = detector.detect(source_portrait())
    clip = TalkingClip(source_portrait(), found[0].landmarks, 640, 480)
    settings = Settings(swap_mode="async", texture="static", color_match=False,
                        quality_meter=False, mask="box", detect_every=2)
    processor = FrameProcessor(ConstantSwapper(0.05), None, settings)  # type: ignore[arg-type]
    missing = _MissingDetector(detector, miss_from=8, misses=3)
    pipe = Pipeline(talking_source(clip, fps=20), processor, missing,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    shown: list[bool] = []
    pipe.start()
    try:
        seen, deadline = -1, time.monotonic() + 20
        while time.monotonic() < deadline and (missing.calls < 14 or len(shown) < 40):
            version, result = pipe.preview()
            if result is not None and version != seen:
                seen = version
                shown.append(result.swapped)
            time.sleep(0.01)
            pipe.check()
        tracks_seen = pipe.tracker._next_id - 1
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert missing.calls >= 14 and tracks_seen >= 2  # the face was dropped and re-found
    first = shown.index(True)
    assert all(shown[first:]), "".join("x" if s else "." for s in shown)
