"""The identity meter leaves the outputs alone: what the sinks (virtual camera, recording)
get is byte-for-byte the same with the meter on and off.

The pipeline is real (file source → RetinaFace → tracker → processor → sink, and the
meter on the swap worker with its own detector lookups); the swapper is deterministic
(it inverts each crop) and the meter's encoder a pixel one, so only the meter differs
between the two runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.faces.quality import QualityMeter
from realtime.faces.track import FaceTracker
from realtime.frame.process import FrameProcessor
from realtime.pipeline import Pipeline
from realtime.types import AlignedFace, SourceFace

FAMILY = "inswapper-128"
FRAMES = 8


def _signature(crop: np.ndarray) -> np.ndarray:
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (16, 32),
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-6)


class PixelEncoder:
    family = FAMILY
    model_key = "pixel-signature"

    def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return _signature(warp_face(image, landmarks, FAMILY).crop)

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.identify(image, landmarks)


class InvertingSwapper:
    family = FAMILY
    crop_size = 128
    backend = "invert"

    def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
        return [255 - face.crop for face in crops]


class CollectingSink:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def start(self) -> None: ...

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        self.frames.append(image.copy())

    def stop(self) -> None: ...

    def describe(self) -> str:
        return "collect"


def _clip(t1: np.ndarray, path: Path) -> list[np.ndarray]:
    small = cv2.resize(t1, (640, 442), interpolation=cv2.INTER_AREA)
    frames = [cv2.warpAffine(small, np.array([[1.0, 0, 3.0 * i], [0, 1.0, 1.0 * i]]),
                             (640, 442), borderMode=cv2.BORDER_REFLECT) for i in range(FRAMES)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 4, (640, 442))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return frames


def _run(video: Path, source: SourceFace, models: Path,
         meter: QualityMeter | None) -> list[np.ndarray]:
    from realtime.faces.detect import make_detector
    from realtime.io.capture import open_source

    settings = Settings(detect_every=1, swap_mode="sync", color_match=False, max_faces=6,
                        detect_width=640, quality_meter=meter is not None)
    detector = make_detector("retinaface", models, engine="onnxruntime-cpu", detect_width=640)
    detector.detect(np.zeros((442, 640, 3), np.uint8))  # warm: the first frame must not lag
    sink = CollectingSink()
    processor = FrameProcessor(InvertingSwapper(), PixelEncoder(), settings)  # type: ignore[arg-type]
    # every frame detected, no time-based smoothing: the output depends on the frame
    # alone, not on when it was read (the One Euro filter follows the clock)
    tracker = FaceTracker(detect_every=1, smooth=False)
    pipe = Pipeline(open_source(str(video), fps=4.0, loop=False), processor, detector,
                    (source,), [sink], settings, detect_in_worker=False, meter=meter,
                    tracker=tracker)
    pipe.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(sink.frames) < FRAMES:
            time.sleep(0.1)
            pipe.check()
        time.sleep(0.5)  # nothing more arrives
    finally:
        pipe.stop()
        pipe.wait_stopped()
    return sink.frames


def test_sink_frames_are_the_same_with_the_meter_on_and_off(
    t1_bgr: np.ndarray, face_photos: dict[str, Path], tmp_path: Path,
) -> None:  # fmt: skip
    video = tmp_path / "clip.avi"
    _clip(t1_bgr, video)
    source = SourceFace("grace", (str(face_photos["grace_hopper"]),),
                        {FAMILY: np.eye(512, dtype=np.float32)[0]})
    meter = QualityMeter(PixelEncoder(), "pixel", True, rate=50.0,  # type: ignore[arg-type]
                         max_age_s=600.0)
    with_meter = _run(video, source, tmp_path, meter)
    measured = meter.summary()
    without = _run(video, source, tmp_path, None)

    assert measured is not None, "the meter measured nothing: the comparison proves nothing"
    read = cv2.VideoCapture(str(video))
    decoded = [read.read()[1] for _ in range(FRAMES)]
    read.release()
    # Which input frame each output is (a loaded machine may drop a frame at the
    # source in either run: frame rate is the bench's business, not this test's).
    def by_input(frames: list[np.ndarray]) -> dict[int, np.ndarray]:
        return {int(np.argmin([np.abs(f.astype(int) - d).mean() for d in decoded])): f
                for f in frames}

    on, off = by_input(with_meter), by_input(without)
    common = sorted(set(on) & set(off))
    assert len(common) >= FRAMES // 2, (sorted(on), sorted(off))
    for i in common:
        assert on[i].tobytes() == off[i].tobytes(), f"frame {i} differs with the meter on"
        assert (on[i] != decoded[i]).any(), f"frame {i} was not swapped"
