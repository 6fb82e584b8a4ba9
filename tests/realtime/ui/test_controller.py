"""The adapter between window and pipeline: stats mapping, output switching, sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.config import Settings
from realtime.stats import PipelineStats, Summary
from realtime.ui import controller as ctl
from tests.realtime.ui.test_main_window import FakeSink, Harness


def test_stats_view_reads_pipeline_stats() -> None:
    stats = PipelineStats(fps_out=24.5, latency=Summary(p50=41.0, p95=77.0, count=9),
                          drops={"capture": 3, "output": 4},
                          stages={"detect": Summary(p50=6.5, count=9),
                                  "swap": Summary(p50=30.0, count=9),
                                  "track": Summary(count=0)},
                          faces=2, swap_mode="async", source_state="reconnecting")
    view = ctl.stats_view(stats)
    assert (view.fps, view.latency_p50_ms, view.latency_p95_ms) == (24.5, 41.0, 77.0)
    assert view.drops == 7 and view.faces == 2 and view.swap_mode == "async"
    assert view.stage_ms == {"detect": 6.5, "swap": 30.0}  # stages that never ran left out
    assert view.source_state == "reconnecting"


class BrokenSink(FakeSink):
    def send(self, image: np.ndarray, captured_ns: int) -> None:
        raise OSError("device went away")


def test_sink_switch_forwards_and_detaches_failures() -> None:
    switch = ctl.SinkSwitch()
    good, bad = FakeSink("good"), BrokenSink("bad")
    switch.attach("good", good)
    switch.attach("bad", bad)
    image = np.zeros((4, 6, 3), np.uint8)
    switch.send(image, 0)
    assert good.frames == 1 and good.started
    assert not switch.has("bad") and bad.stopped
    assert switch.take_errors() == ["bad stopped: device went away"]
    assert switch.take_errors() == []
    assert switch.last_size == (6, 4)
    good.error = RuntimeError("ffmpeg exited")  # a sink that failed on its own thread
    assert switch.take_errors() == ["good stopped: ffmpeg exited"]
    assert not switch.has("good") and good.stopped


def test_controller_sources_and_active_index(tmp_path: Path) -> None:
    harness = Harness()
    controller = ctl.Controller(tmp_path, tmp_path, build=harness.build,
                                vcam_factory=harness.vcam, recorder_factory=harness.recorder)
    with pytest.raises(ctl.NotRunning):
        controller.add_source([tmp_path / "a.png"])
    assert not controller.select_source(0)
    controller.set_active_hint(1)
    controller.build(Settings())
    pipeline = harness.pipelines[-1]
    for name in "abc":
        controller.add_source([tmp_path / f"{name}.png"])
    assert pipeline.source_index == 1  # the remembered choice applied once it existed
    assert controller.next_source() and pipeline.source_index == 2
    assert controller.next_source() and pipeline.source_index == 0
    assert controller.previous_source() and pipeline.source_index == 2
    controller.remove_source([str(tmp_path / "a.png")])
    assert controller.active_source == 1 and pipeline.source_index == 1
    controller.remove_source([str(tmp_path / "c.png")])
    assert controller.active_source == 0 and pipeline.source_index == 0
    renamed = controller.rename_source([str(tmp_path / "b.png")], "Bea")
    assert renamed is not None and controller.sources()[0].name == "Bea"
    assert not controller.select_source(5)
    controller.shutdown()
    assert not controller.running


def test_recording_uses_the_frame_size(tmp_path: Path) -> None:
    sizes: list[tuple[int, int]] = []

    def recorder(path: Path, width: int, height: int, fps: float) -> ctl.Sink:
        sizes.append((width, height))
        return FakeSink(str(path))

    controller = ctl.Controller(tmp_path, tmp_path, build=Harness().build,
                                recorder_factory=recorder)
    controller.build(Settings())
    controller._switch.send(np.zeros((120, 160, 3), np.uint8), 0)
    path = controller.start_recording(tmp_path / "videos", Settings())
    assert path.parent == tmp_path / "videos" and path.suffix == ".mkv"
    assert sizes == [(160, 120)] and controller.recording
    assert controller.stop_recording() == path and not controller.recording
    controller.shutdown()


def test_missing_models_lists_swapper_and_encoder(tmp_path: Path) -> None:
    assert ctl.missing_models(tmp_path, "inswapper-128") == ["inswapper-128", "arcface-w600k"]
    with pytest.raises(ctl.ModelsMissing, match="arcface-simswap"):
        ctl.build_runtime(Settings(model="simswap-224"), tmp_path, tmp_path, FakeSink("x"))
