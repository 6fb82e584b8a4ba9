"""Quality metrics: landmark keep, expression and pose proxies, retrieval, the meter."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.faces.quality import (
    QualityMeter,
    expression_error,
    format_quality,
    head_pose,
    interocular,
    landmark_keep,
    meter_encoder_name,
    meter_score,
    pose_error,
    retrieval_top1,
    similarity_fit,
)

# five points of a frontal face in a 640×480 frame (SCRFD order)
FIVE = np.array([[280, 200], [360, 200], [320, 250], [290, 290], [350, 290]], np.float64)


def _similar(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]
             ) -> np.ndarray:
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rot.T + np.array(shift)


def test_keep_is_zero_for_the_same_points_and_scales_with_the_eyes() -> None:
    assert interocular(FIVE) == pytest.approx(80.0)
    assert landmark_keep(FIVE, FIVE) == 0.0
    moved = FIVE + np.array([8.0, 0.0])
    assert landmark_keep(FIVE, moved) == pytest.approx(0.1)
    # the same motion on a face twice the size is half the error
    assert landmark_keep(FIVE * 2, FIVE * 2 + np.array([8.0, 0.0])) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="same shapes"):
        landmark_keep(FIVE, np.vstack([FIVE, FIVE[:1]]))


def test_expression_ignores_pose_but_not_a_changed_mouth() -> None:
    turned = _similar(FIVE, 20, 1.3, (15, -10))
    assert landmark_keep(FIVE, turned) > 0.3  # the plain distance sees the motion
    assert expression_error(FIVE, turned) < 1e-9  # the expression proxy removes it
    m = similarity_fit(FIVE, turned)
    assert np.allclose(FIVE @ m[:, :2].T + m[:, 2], turned)
    smile = FIVE.copy()
    smile[3] += (-10, -6)
    smile[4] += (10, -6)
    assert expression_error(FIVE, smile) > 0.05


def test_head_pose_reads_roll_and_pose_error_compares_two_faces() -> None:
    yaw, _pitch, roll = head_pose(FIVE, (640, 480))
    assert abs(roll) < 2 and abs(yaw) < 10
    tilted = _similar(FIVE - FIVE.mean(0), 15, 1.0, tuple(FIVE.mean(0)))
    assert head_pose(tilted, (640, 480))[2] == pytest.approx(roll + 15, abs=2)
    assert pose_error(FIVE, tilted, (640, 480)) == pytest.approx(15, abs=3)
    assert pose_error(FIVE, FIVE, (640, 480)) == pytest.approx(0, abs=1e-6)


def test_retrieval_top1_counts_nearest_sources() -> None:
    sources = np.eye(3, 8)
    outputs = np.array([sources[0] + 0.1, sources[2] + 0.1 * sources[1], sources[0]])
    assert retrieval_top1(outputs, sources, [0, 2, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        retrieval_top1(outputs, sources, [0])


def test_the_meter_prefers_the_other_encoder_when_installed() -> None:
    assert meter_encoder_name("simswap-224", lambda n: True) == ("arcface-w600k", True)
    assert meter_encoder_name("inswapper-128", lambda n: True) == ("arcface-simswap", True)
    assert meter_encoder_name("inswapper-128", lambda n: False) == ("arcface-w600k", False)
    assert meter_score(0.634) == 63 and meter_score(-0.2) == 0


def test_meter_measures_real_crops_rate_limited(random_models_dir: Path,
                                                 astronaut_bgr: np.ndarray,
                                                 face_photos: dict[str, Path]) -> None:
    """The real w600k-format encoder (random weights) on the astronaut: identity of the
    unchanged crop equals its 'before'; a rate of 2/s refuses a second measure at once."""
    from realtime.faces.align import warp_face
    from realtime.faces.detect import make_detector
    from realtime.faces.quality import load_meter_encoder
    from realtime.types import SourceFace

    encoder, name, independent = load_meter_encoder("simswap-224", random_models_dir,
                                                    engine="onnxruntime-cpu")
    assert (name, independent) == ("arcface-w600k", True)
    detector = make_detector("retinaface", random_models_dir, engine="onnxruntime-cpu")
    meter = QualityMeter(encoder, name, independent, rate=2.0,
                         detect=lambda im: list(detector.detect(im)))
    det = max(detector.detect(astronaut_bgr), key=lambda d: d.area)
    aligned = warp_face(astronaut_bgr, det.landmarks, "simswap-224")
    points = det.landmarks @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    source = SourceFace("astronaut", (str(face_photos["astronaut"]),))
    assert meter.due()
    same = meter.measure(7, aligned.crop, aligned.crop.copy(), points, source)
    assert same is not None and same.identity == pytest.approx(same.before)
    assert same.keep == pytest.approx(0.0, abs=1e-6)
    assert not meter.due()
    blurred = cv2.GaussianBlur(aligned.crop, (0, 0), 6)
    changed = meter.measure(7, aligned.crop, blurred, points, source)
    assert changed is not None and changed.identity != pytest.approx(changed.before)
    assert set(meter.results()) == {7}
    assert "by arcface-w600k" in format_quality(meter.summary())
    missing = SourceFace("nobody", (str(face_photos["astronaut"]) + ".missing",))
    assert meter.measure(8, aligned.crop, aligned.crop, points, missing) is None


class _SlowEncoder:
    """An encoder whose identify costs ``cost`` seconds of the (patched) clock."""

    def __init__(self, clock: list[float], cost: float) -> None:
        self.clock, self.cost = clock, cost

    def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        self.clock[0] += self.cost
        vector = np.zeros(512, np.float32)
        vector[int(image.mean()) % 512] = 1.0
        return vector


def test_a_slow_meter_takes_at_most_its_share_of_the_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two identify calls of 0.3 s each: with share 0.1 the next measurement waits
    0.6·0.9/0.1 = 5.4 s, not the rate's 1/3 s; a fast meter keeps the rate."""
    import realtime.faces.quality as quality
    from realtime.types import SourceFace

    clock = [100.0]
    monkeypatch.setattr(quality.time, "monotonic", lambda: clock[0])
    meter = QualityMeter(_SlowEncoder(clock, 0.3), "slow", True, rate=3.0, share=0.1)
    source = SourceFace("s", ())
    meter._sources[(source.name, source.paths)] = np.eye(512, dtype=np.float32)[0]
    crop = np.zeros((224, 224, 3), np.uint8)
    points = np.zeros((5, 2), np.float32)
    assert meter.measure(1, crop, crop, points, source) is not None
    clock[0] += 5.3
    assert not meter.due()
    clock[0] += 0.2
    assert meter.due()
    fast = QualityMeter(_SlowEncoder(clock, 0.001), "fast", True, rate=3.0, share=0.1)
    fast._sources[(source.name, source.paths)] = np.eye(512, dtype=np.float32)[0]
    fast.measure(1, crop, crop, points, source)
    clock[0] += 1 / 3 + 1e-6
    assert fast.due()
    with pytest.raises(ValueError, match="share"):
        QualityMeter(_SlowEncoder(clock, 0.0), "x", True, share=0.0)
