"""Two people, two identities: the pipeline's face map on a group video from t1.jpg.

The pipeline is real (file source → RetinaFace → tracker → processor → sink); the
recogniser is a pixel one (grey aligned crop, normalised): random-weight ArcFace files
cannot tell people apart, a pixel signature of the same photo can, which is all that
following two people through a moving, cropped video needs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.faces.mapping import FaceMap
from realtime.frame.process import FrameProcessor
from realtime.pipeline import Pipeline
from realtime.types import AlignedFace, SourceFace

FAMILY = "inswapper-128"


def _signature(crop: np.ndarray) -> np.ndarray:
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (24, 24),
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-6)


class PixelEncoder:
    family = FAMILY

    def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return _signature(warp_face(image, landmarks, FAMILY).crop)


class RecordingSwapper:
    """Returns each crop unchanged and records (identity index, crop signature)."""

    family = FAMILY
    crop_size = 128
    backend = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[int, np.ndarray]] = []

    def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
        # one identity (512,) or one per face (N, 512), as FaceSwapper.swap takes
        rows = np.broadcast_to(identity, (len(crops), identity.shape[-1]))
        for face, row in zip(crops, rows, strict=True):
            self.calls.append((int(np.argmax(row)), _signature(face.crop)))
        return [face.crop.copy() for face in crops]


class NullSink:
    def start(self) -> None: ...
    def send(self, image: np.ndarray, captured_ns: int) -> None: ...
    def stop(self) -> None: ...
    def describe(self) -> str:
        return "null"


def _group_video(t1: np.ndarray, path: Path, frames: int = 24) -> None:
    """t1.jpg moving and cropped: a window sliding right and down, rescaled to 960×540."""
    h, w = t1.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, (960, 540))
    for i in range(frames):
        dx, dy = 2 * i, i
        window = t1[dy:h - 24 + dy, dx:w - 48 + dx]
        writer.write(cv2.resize(window, (960, 540)))
    writer.release()


def test_two_people_wear_their_mapped_identities(t1_bgr: np.ndarray, tmp_path: Path) -> None:
    from realtime.faces.detect import make_detector
    from realtime.io.capture import open_source

    detector = make_detector("retinaface", tmp_path, engine="onnxruntime-cpu",
                             detect_width=960)
    people = sorted(detector.detect(t1_bgr), key=lambda d: d.box[0])
    assert len(people) == 6
    refs = [_signature(warp_face(t1_bgr, p.landmarks, FAMILY).crop) for p in people]
    encoder = PixelEncoder()
    second, fifth = refs[1], refs[4]
    cross = max(float(a @ b) for i, a in enumerate(refs) for b in refs[i + 1:])
    face_map = FaceMap(threshold=cross + 0.25 * (1 - cross), unassigned="leave")
    face_map.add_reference(second, "A")
    face_map.add_reference(fifth, "B")

    video = tmp_path / "group.avi"
    _group_video(t1_bgr, video)
    one_hot = [np.eye(512, dtype=np.float32)[k] for k in range(3)]
    sources = (SourceFace("A", (), {FAMILY: one_hot[1]}),
               SourceFace("B", (), {FAMILY: one_hot[2]}))
    settings = Settings(detect_every=3, swap_mode="sync", color_match=False,
                        detect_width=960, quality_meter=False)
    swapper = RecordingSwapper()
    processor = FrameProcessor(swapper, encoder, settings)  # type: ignore[arg-type]
    pipe = Pipeline(open_source(str(video), fps=15.0), processor, detector, sources,
                    [NullSink()], settings, detect_in_worker=False, face_map=face_map)
    pipe.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                len({k for k, _ in swapper.calls}) < 2 or len(swapper.calls) < 20):
            time.sleep(0.2)
            pipe.check()
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert swapper.calls, "nothing was swapped"
    worn = {1: 1, 2: 4}  # identity index → the t1 person (left to right) who must wear it
    for identity, signature in swapper.calls:
        person = int(np.argmax([signature @ r for r in refs]))
        assert person == worn[identity], (identity, person)
    assert {k for k, _ in swapper.calls} == {1, 2}  # both people were swapped
