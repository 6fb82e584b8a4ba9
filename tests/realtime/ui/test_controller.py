"""The adapter between window and pipeline: stats mapping, output switching, sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.config import Settings
from realtime.ui import controller as ctl
from tests.dlib_extra import require_dlib
from tests.realtime.ui.test_main_window import FakeSink, Harness


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
    path = controller.outputs.start_recording(tmp_path / "videos", Settings())
    assert path.parent == tmp_path / "videos" and path.suffix == ".mkv"
    assert sizes == [(160, 120)] and controller.outputs.recording
    assert controller.outputs.stop_recording() == path and not controller.outputs.recording
    controller.shutdown()


def test_missing_models_lists_swapper_and_encoder(tmp_path: Path) -> None:
    assert ctl.missing_models(tmp_path, "inswapper-128") == ["inswapper-128", "arcface-w600k"]
    with pytest.raises(ctl.ModelsMissing, match="arcface-simswap"):
        ctl.build_runtime(Settings(model="simswap-224"), tmp_path, tmp_path, FakeSink("x"))


def test_build_runtime_tunes_like_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames get the live dlib tuning and the live thread cap; photos keep the defaults."""
    require_dlib()
    from realtime import pipeline, session
    from realtime.faces import identity, sources
    from realtime.faces.detect import DlibDetector
    from realtime.frame import swap
    from realtime.io import capture

    calls: list[tuple[str, dict[str, object]]] = []

    class FakeModel:
        backend = "fake"
        family = "simswap-224"

        def close(self) -> None:
            return None

    def loader(kind: str):  # type: ignore[no-untyped-def]
        def load(model: str, models_dir: Path, **kwargs: object) -> FakeModel:
            calls.append((kind, kwargs))
            return FakeModel()
        return load

    class FakeSource:
        def describe(self) -> str:
            return "fake input"

    made: dict[str, object] = {}

    def fake_pipeline(source, processor, detector, bank, sinks, settings, **extras):  # type: ignore[no-untyped-def]
        made["frames"] = detector
        made["processor"] = processor
        return object()

    def fake_bank(encoder_for, detector, cache_dir, **kwargs):  # type: ignore[no-untyped-def]
        made["photos"] = detector
        return object()

    from realtime.ui import runtime_build

    monkeypatch.setattr(runtime_build, "missing_models", lambda models_dir, model: [])
    monkeypatch.setattr(swap, "load_swapper", loader("swapper"))
    monkeypatch.setattr(identity, "load_encoder", loader("encoder"))
    monkeypatch.setattr(capture, "open_source", lambda *a, **k: FakeSource())
    monkeypatch.setattr(pipeline, "Pipeline", fake_pipeline)
    monkeypatch.setattr(sources, "SourceBank", fake_bank)
    monkeypatch.setattr(session.os, "cpu_count", lambda: 6)
    runtime = ctl.build_runtime(Settings(detector="dlib"), tmp_path, tmp_path, FakeSink("x"))
    assert runtime.backend == "fake"
    assert calls == [("swapper", {"engine": "auto", "threads": 5}),
                     ("encoder", {"engine": "auto", "threads": 5})]
    frames, photos = made["frames"], made["photos"]
    assert isinstance(frames, DlibDetector) and isinstance(photos, DlibDetector)
    assert frames is not photos  # dlib is not thread-safe: one per thread
    assert (frames.detect_width, frames.upsample) == (session.LIVE_DLIB_WIDTH,
                                                      session.LIVE_DLIB_UPSAMPLE)
    default = DlibDetector()
    assert (photos.detect_width, photos.upsample) == (default.detect_width, default.upsample)
    # the window's "Enhance face" has an enhancer to open (lazily, on the swap worker)
    assert getattr(made["processor"], "enhancer", None) is not None


def test_the_camera_runs_alone_without_models(tmp_path: Path, t1_path: Path) -> None:
    """Issue 15 first run: the real camera-only runtime (file camera: t1.jpg) shows
    frames with no model installed; photos wait for the real pipeline."""
    import time

    settings = Settings(camera=str(t1_path), models_dir=str(tmp_path / "models"))
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache")
    ctl.prepare_models(settings, tmp_path / "models", None)  # missing: nothing to convert
    runtime = controller.show_camera(settings)
    assert runtime is not None and runtime.preview_only
    assert controller.running and not controller.swapping
    assert controller.show_camera(settings) is runtime  # same camera: not restarted
    deadline = time.monotonic() + 10
    while controller.preview()[1] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _version, result = controller.preview()
    assert result is not None
    assert result.image.shape[:2] == (886, 1280)
    np.testing.assert_array_equal(result.image, result.frame.image)  # shown as it is
    with pytest.raises(ctl.NotRunning):
        controller.add_source([t1_path])
    with pytest.raises(ctl.ModelsMissing):
        controller.build(settings)
    assert controller.running  # a failed build leaves the camera running
    controller.shutdown()
    assert not controller.running
