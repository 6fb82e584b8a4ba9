"""bench --motion's stability figures on frames whose changes are known: pop, switches,
flicker and flashes; the occluder and the missing detector."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from realtime.cli.stability_bench import MissingDetector, OccludedSource, StabilityMeter
from realtime.types import Frame

MATRIX = np.array([[1.0, 0.0, -50.0], [0.0, 1.0, -50.0]])  # a 224 px face at (50, 50)


def _frame(value: int) -> np.ndarray:
    return np.full((400, 400, 3), value, np.uint8)


def test_pop_switches_flicker_and_flashes_from_known_changes() -> None:
    meter = StabilityMeter(people=1)
    meter.measuring = True
    shown = 100
    for k in range(12):
        image = _frame(10 + 2 * k)  # the input changes by 2 a frame
        meter.begin_frame(image)
        if k == 9:
            continue  # nothing pasted: a real face shows
        # the shown face follows the input, but jumps by 20 at frame 5 (a texture change)
        shown += 20 if k == 5 else 2
        state = [(1, k == 5, False)]
        meter.faces(image, _frame(shown), [(MATRIX, 224, None)], 0.08, state)
    meter.begin_frame(_frame(0))
    result = meter.result()
    assert result.switches == 1
    assert result.pop == pytest.approx(10.0)  # 20 ÷ the input's mean change of 2
    assert result.pop_peak == pytest.approx(10.0)  # one frame: its mean is its largest
    assert result.pop_input_peak == pytest.approx(1.0)
    assert result.flashes == 1 and result.frames == 12
    # |shown change − input change|: 0 on most frames, 18 at the texture change, and the
    # jump back from the real face after the flash
    gaps = sorted(round(abs(s - m)) for _, s, m in meter.samples)
    assert gaps == [0] * 8 + [18, 108]  # 138 shown after 28 real, the input moved 2
    assert result.flicker == pytest.approx(float(np.percentile(gaps, 95)), abs=0.01)


def test_a_faded_change_counts_the_mean_and_the_largest_of_its_steps() -> None:
    meter = StabilityMeter(people=None)
    meter.measuring = True
    steps = [2, 4, 8, 6, 2, 2]  # a fade spreads a change of 18 over three frames
    moves = [2, 2, 4, 2, 2, 2]  # the input moves 2 a frame, 4 once during the fade
    shown, value = 100, 10
    for k, (step, move) in enumerate(zip(steps, moves, strict=True)):
        value += move
        image = _frame(value)
        meter.begin_frame(image)
        shown += step
        state = [(3, k == 1, k in (1, 2))]
        meter.faces(image, _frame(shown), [(MATRIX, 224, None)], 0.08, state)
    result = meter.result()
    base = np.mean(moves[1:])  # the first frame has no previous one
    assert result.switches == 1
    assert result.pop == pytest.approx(np.mean([4, 8, 6]) / base)  # the frames of the change
    assert result.pop_peak == pytest.approx(8 / base)  # its largest step
    assert result.pop_input_peak == pytest.approx(4 / base)  # the input's largest there
    assert result.flashes == 0


class _Source:
    fps = 10.0

    def __init__(self) -> None:
        self.index = 0

    def read(self) -> Frame:
        self.index += 1
        return Frame(self.index, 0, _frame(50))


def test_the_occluder_crosses_the_face_now_and_then() -> None:
    source = OccludedSource(_Source(), (200.0, 200.0), 100.0, every_s=2.0, cross_s=0.5)
    covered = [bool((source.read().image != 50).any()) for _ in range(40)]
    assert covered[:4] == [True] * 4 and not any(covered[5:19]) and covered[19]
    assert source.fps == 10.0  # the rest is the inner source's


class _Detector:
    name = "fake"

    def detect(self, image: np.ndarray) -> list[Any]:
        return ["face"]


def test_the_missing_detector_misses_in_bursts() -> None:
    detector = MissingDetector(_Detector(), period=6, misses=2)
    found = [bool(detector.detect(_frame(0))) for _ in range(12)]
    assert found == [True, True, True, False, False, True] * 2
    assert detector.name == "fake"
    with pytest.raises(ValueError, match="misses"):
        MissingDetector(_Detector(), period=3, misses=3)


def test_texture_limits_the_modes_run() -> None:
    from realtime.cli.bench_motion import modes_run

    assert modes_run("static") == ["static"]
    assert modes_run("flow") == ["flow", "live_mouth"]
    assert modes_run("auto") == ["static", "flow", "live_mouth"]
