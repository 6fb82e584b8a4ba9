"""The window against a fake pipeline (fast): hotkeys, toggles, tiles, persistence, threads.

The fakes stand where the real pipeline and source bank plug in (the controller's
``build`` hook); the same window runs on the real modules in test_integration.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from realtime.config import Settings
from realtime.settings_store import SettingsStore
from realtime.stats import PipelineStats, Summary
from realtime.types import Frame, SourceFace, StageTimings, SwapResult
from realtime.ui import controller as ctl
from realtime.ui.main_window import MainWindow


class NoFaceError(ValueError):
    """Named like realtime.faces.sources.NoFaceError: the window keys its tile text on the name."""


class FakeBank:
    def __init__(self) -> None:
        self._sources: list[SourceFace] = []

    @property
    def sources(self) -> tuple[SourceFace, ...]:
        return tuple(self._sources)

    def add(self, paths: Sequence[Path], name: str | None = None) -> SourceFace:
        if any("noface" in Path(p).name for p in paths):
            raise NoFaceError(f"source photo {paths[0]}: no face found")
        face = SourceFace(name or Path(paths[0]).stem, tuple(str(p) for p in paths),
                          {"fake": np.ones(512, np.float32) / np.sqrt(512)},
                          np.full((32, 32, 3), 200, np.uint8))
        self._sources.append(face)
        return face

    def remove(self, index: int) -> SourceFace:
        return self._sources.pop(index)

    def rename(self, index: int, name: str) -> SourceFace:
        old = self._sources[index]
        self._sources[index] = SourceFace(name, old.paths, old.embeddings, old.thumbnail)
        return self._sources[index]


class FakePipeline:
    """Produces frames on its own thread like the real one, and records every call."""

    def __init__(self, bank: FakeBank, sink: ctl.Sink) -> None:
        self.bank, self.sink = bank, sink
        self.source_index = 0
        self.swap_enabled = True
        self.settings: Settings | None = None
        self.error: BaseException | None = None
        self.source_state = "running"
        self._stop = threading.Event()
        self._version = 0
        self._result: SwapResult | None = None
        self._thread = threading.Thread(target=self._run, name="fake-pipeline", daemon=True)

    def _run(self) -> None:
        image = np.zeros((120, 160, 3), np.uint8)
        while not self._stop.wait(0.02):
            frame = Frame(self._version, time.monotonic_ns(), image)
            out = image.copy()
            out[:, :, 2] = 40 * (self.source_index + 1) if self.swap_enabled else 0
            self._result = SwapResult(frame, out, (), StageTimings({"swap": 5.0}), True)
            self._version += 1
            self.sink.send(out, frame.captured_ns)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0, *, raise_error: bool = True) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def select_source(self, index: int) -> None:
        if not 0 <= index < len(self.bank.sources):
            raise IndexError(index)
        self.source_index = index

    def set_swap_enabled(self, enabled: bool) -> None:
        self.swap_enabled = enabled

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings

    def stats(self) -> PipelineStats:
        return PipelineStats(fps_out=30.0, latency=Summary(p50=20.0, p95=30.0, count=9),
                             drops={"output": 1},
                             stages={"detect": Summary(p50=3.0, count=9),
                                     "swap": Summary(p50=5.0, count=9)},
                             source_state=self.source_state)

    def preview(self) -> tuple[int, SwapResult | None]:
        return self._version, self._result


class FakeSink:
    def __init__(self, label: str) -> None:
        self.label = label
        self.frames = 0
        self.started = self.stopped = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self.started = True

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        self.frames += 1

    def stop(self) -> None:
        self.stopped = True

    def describe(self) -> str:
        return f"fake {self.label}"


class Harness:
    def __init__(self) -> None:
        self.pipelines: list[FakePipeline] = []
        self.cameras: list[FakePipeline] = []
        self.vcams: list[FakeSink] = []
        self.recorders: list[FakeSink] = []
        self.fail_build: BaseException | None = None

    def build(self, settings: Settings, models_dir: Path, cache_dir: Path,
              sink: ctl.Sink) -> ctl.Runtime:
        if self.fail_build is not None:
            raise self.fail_build
        bank = FakeBank()
        pipeline = FakePipeline(bank, sink)
        self.pipelines.append(pipeline)
        return ctl.Runtime(pipeline, bank, "fake-engine", "fake input")

    def camera_build(self, settings: Settings, sink: ctl.Sink) -> ctl.Runtime:
        """The camera alone, as ``ctl.camera_runtime`` (it fails like the build would)."""
        if self.fail_build is not None and not isinstance(self.fail_build, ctl.ModelsMissing):
            raise self.fail_build
        pipeline = FakePipeline(FakeBank(), sink)
        pipeline.swap_enabled = False
        self.cameras.append(pipeline)
        return ctl.Runtime(pipeline, ctl.NoSources(), "camera only", "fake input",
                           preview_only=True)

    def vcam(self, settings: Settings, width: int, height: int) -> ctl.Sink:
        sink = FakeSink("virtual camera")
        self.vcams.append(sink)
        return sink

    def recorder(self, path: Path, width: int, height: int, fps: float) -> ctl.Sink:
        sink = FakeSink(str(path))
        self.recorders.append(sink)
        return sink


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("ann", "bob", "cid", "noface"):
        path = tmp_path / f"{name}.png"
        path.write_bytes(b"not read by the fake bank")
        paths.append(path)
    return paths


def make_window(qtbot: QtBot, harness: Harness, tmp_path: Path,
                settings: Settings | None = None) -> MainWindow:
    store = SettingsStore(tmp_path / "config" / "settings.toml")
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache", build=harness.build,
                                camera_build=harness.camera_build,
                                vcam_factory=harness.vcam, recorder_factory=harness.recorder)
    window = MainWindow(store, settings or Settings(record_path=str(tmp_path / "rec")),
                        controller)
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: controller.swapping, timeout=5000)
    return window


@pytest.fixture
def window(qtbot: QtBot, harness: Harness, tmp_path: Path,
           photos: list[Path]) -> Iterator[MainWindow]:
    win = make_window(qtbot, harness, tmp_path)
    for path in photos[:3]:
        win.sources.add_source([path])
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 3, timeout=5000)
    yield win
    win.close()


def test_preview_draws_pipeline_frames(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.preview.result is not None, timeout=3000)
    drawn = window.preview.frames_drawn
    qtbot.waitUntil(lambda: window.preview.frames_drawn > drawn + 2, timeout=3000)
    assert "fake-engine" in window.status_model.text()


def test_number_keys_select_sources(qtbot: QtBot, window: MainWindow,
                                    harness: Harness) -> None:
    pipeline = harness.pipelines[-1]
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert pipeline.source_index == 2
    assert window.gallery.active == 2
    assert window.settings.active_source == 2
    tile = window.gallery.tiles[window.gallery.entries[2].key]
    assert tile.title.text().startswith("3 · ")
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert pipeline.source_index == 0  # wraps around
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert pipeline.source_index == 2
    qtbot.keyClick(window, Qt.Key.Key_9)  # no ninth source: nothing changes
    assert pipeline.source_index == 2
    assert "no source 9" in window.statusBar().currentMessage()


def test_space_o_v_r_toggle(qtbot: QtBot, window: MainWindow, harness: Harness,
                            tmp_path: Path) -> None:
    pipeline = harness.pipelines[-1]
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert pipeline.swap_enabled is False and window.settings.swap_enabled is False
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert pipeline.swap_enabled is True

    qtbot.keyClick(window, Qt.Key.Key_O)
    assert window.preview.mode == "original"
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert window.preview.mode == "swapped"

    qtbot.keyClick(window, Qt.Key.Key_V)
    assert window.outputs.vcam_wanted and window.controls.vcam.isChecked()
    qtbot.waitUntil(lambda: window.controller.outputs.virtual_camera_on, timeout=3000)
    qtbot.waitUntil(lambda: harness.vcams[-1].frames > 0, timeout=3000)
    qtbot.waitUntil(lambda: window.controls.vcam_status.text() == "fake virtual camera",
                    timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert not window.outputs.vcam_wanted and not window.controls.vcam.isChecked()
    qtbot.waitUntil(lambda: harness.vcams[-1].stopped, timeout=3000)
    assert not window.controller.outputs.virtual_camera_on

    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.outputs.record_wanted and window.controls.record.isChecked()
    qtbot.waitUntil(lambda: window.controller.outputs.recording, timeout=3000)
    path = window.controller.outputs.recording_path
    assert path is not None and path.parent == tmp_path / "rec"
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert not window.outputs.record_wanted and not window.controls.record.isChecked()
    qtbot.waitUntil(lambda: "Saved" in window.controls.record_status.text(), timeout=3000)
    assert not window.controller.outputs.recording and harness.recorders[-1].stopped


def test_photo_without_face_shows_message_on_tile(qtbot: QtBot, window: MainWindow,
                                                 photos: list[Path]) -> None:
    entry = window.sources.add_source([photos[3]])
    assert entry is not None
    qtbot.waitUntil(lambda: entry.state == "failed", timeout=3000)
    tile = window.gallery.tiles[entry.key]
    assert "no face" in tile.status.text().lower()
    assert tile.title.text() == "noface"  # no hotkey number on a failed tile
    assert window.controller.source_count() == 3


def test_virtual_camera_unavailable_is_shown(qtbot: QtBot, harness: Harness,
                                             tmp_path: Path) -> None:
    def unavailable(settings: Settings, width: int, height: int) -> ctl.Sink:
        raise RuntimeError("no v4l2loopback device: sudo modprobe v4l2loopback")

    harness.vcam = unavailable  # type: ignore[method-assign]
    win = make_window(qtbot, harness, tmp_path)
    qtbot.keyClick(win, Qt.Key.Key_V)
    qtbot.waitUntil(lambda: not win.controls.vcam.isChecked(), timeout=3000)
    assert "v4l2loopback" in win.controls.vcam_status.text()
    assert not win.outputs.vcam_wanted and win.settings.virtual_cam is False
    assert not win.banner.isHidden() and "v4l2loopback" in win.banner.label.text()
    win.close()


def test_worker_error_reaches_the_banner(qtbot: QtBot, window: MainWindow,
                                         harness: Harness) -> None:
    harness.pipelines[-1].error = RuntimeError("process thread failed: boom")
    qtbot.waitUntil(lambda: not window.banner.isHidden(), timeout=3000)
    assert "boom" in window.banner.label.text()
    assert not window.banner.action.isHidden()  # Restart offered
    window.banner.action.click()
    qtbot.waitUntil(lambda: len(harness.pipelines) == 2 and window.controller.running,
                    timeout=3000)
    qtbot.waitUntil(lambda: len(window.gallery.ready_entries()) == 3, timeout=3000)


def test_lost_camera_is_reported(qtbot: QtBot, window: MainWindow, harness: Harness) -> None:
    harness.pipelines[-1].source_state = "reconnecting"
    qtbot.waitUntil(lambda: not window.banner.isHidden(), timeout=3000)
    assert "Lost the camera" in window.banner.label.text()
    assert any("RECONNECTING" in text for text, _ in window.preview.badges)
    harness.pipelines[-1].source_state = "running"
    qtbot.waitUntil(lambda: not window.preview.badges, timeout=3000)


def test_build_failure_keeps_the_window_usable(qtbot: QtBot, harness: Harness,
                                               tmp_path: Path) -> None:
    harness.fail_build = RuntimeError("camera 0: could not open (tried V4L2)")
    store = SettingsStore(tmp_path / "settings.toml")
    controller = ctl.Controller(tmp_path, tmp_path, build=harness.build,
                                camera_build=harness.camera_build)
    win = MainWindow(store, Settings(), controller)
    qtbot.addWidget(win)
    win.start()
    # the camera alone fails first (its own banner line), then the build
    qtbot.waitUntil(lambda: "Not running" in win.preview.message, timeout=3000)
    assert not win.banner.isHidden() and "could not open" in win.banner.label.text()
    assert any(m.startswith("Could not start") for m in win.banner.messages)
    harness.fail_build = None
    win.models.apply_changes({"camera": str(tmp_path / "clip.mp4")})  # pick a file: rebuilds
    qtbot.waitUntil(lambda: controller.swapping, timeout=3000)
    win.close()


def test_settings_saved_and_restored(qtbot: QtBot, harness: Harness, tmp_path: Path,
                                     photos: list[Path]) -> None:
    win = make_window(qtbot, harness, tmp_path)
    win.sources.add_source([photos[0]])
    win.sources.add_source([photos[1], photos[2]], "bob and cid")
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 2, timeout=3000)
    qtbot.keyClick(win, Qt.Key.Key_2)
    win.models.apply_changes({"feather": 0.2, "detect_every": 3})
    win.resize(780, 530)
    size = (win.width(), win.height())
    win.close()
    saved = SettingsStore(tmp_path / "config" / "settings.toml").load().settings
    assert saved.active_source == 1 and saved.feather == 0.2 and saved.detect_every == 3
    assert len(saved.sources) == 2 and saved.source_names[1] == "bob and cid"
    assert saved.window_geometry

    again = make_window(qtbot, harness, tmp_path, saved)
    qtbot.waitUntil(lambda: len(again.gallery.ready_entries()) == 2, timeout=3000)
    assert [len(e.paths) for e in again.gallery.entries] == [1, 2]
    assert again.gallery.entries[1].name == "bob and cid"
    assert harness.pipelines[-1].source_index == 1
    assert (again.width(), again.height()) == size == (780, 530)
    assert again.controls.detect_every.value() == 3
    again.close()


def test_detection_size_box_goes_live_and_is_saved(qtbot: QtBot, harness: Harness,
                                                  tmp_path: Path) -> None:
    win = make_window(qtbot, harness, tmp_path)
    box = win.controls.detect_width
    assert box.value() == 640 and box.suffix() == " px"
    assert (box.minimum(), box.maximum(), box.singleStep()) == (320, 1920, 160)
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Up)  # one step: 640 → 800
    qtbot.keyClick(box, Qt.Key.Key_Up)
    assert win.settings.detect_width == 960
    pipeline = harness.pipelines[-1]
    assert pipeline.settings is not None and pipeline.settings.detect_width == 960
    assert len(harness.pipelines) == 1  # applied to the running pipeline, no rebuild
    win.close()
    saved = SettingsStore(tmp_path / "config" / "settings.toml").load().settings
    assert saved.detect_width == 960
    again = make_window(qtbot, harness, tmp_path, saved)
    assert again.controls.detect_width.value() == 960
    again.close()


def test_corrupt_settings_file_warns_in_window(qtbot: QtBot, harness: Harness,
                                               tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("model = [broken")
    loaded = SettingsStore(path).load()
    assert loaded.settings == Settings() and loaded.backup is not None
    controller = ctl.Controller(tmp_path, tmp_path, build=harness.build)
    win = MainWindow(SettingsStore(path), loaded.settings, controller,
                     startup_warning=loaded.warning)
    qtbot.addWidget(win)
    assert not win.banner.isHidden() and str(loaded.backup) in win.banner.label.text()
    win.close()


def test_help_overlay_toggles(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert window.help.isVisible()
    qtbot.keyClick(window.help, Qt.Key.Key_Escape)
    assert not window.help.isVisible()


def test_remove_and_rename_keep_the_bank_in_step(qtbot: QtBot, window: MainWindow,
                                                 harness: Harness) -> None:
    bank = harness.pipelines[-1].bank
    qtbot.keyClick(window, Qt.Key.Key_3)
    first, second = window.gallery.entries[0], window.gallery.entries[1]
    window.sources.rename_source(second.key, "Robert")
    window.sources.remove_source(first.key)
    qtbot.waitUntil(lambda: len(bank.sources) == 2, timeout=3000)
    qtbot.waitUntil(lambda: bank.sources[0].name == "Robert", timeout=3000)
    # the active source (was the third) is now the second, in the pipeline and on screen
    # (the gallery follows on the GUI thread's next turn)
    qtbot.waitUntil(lambda: harness.pipelines[-1].source_index == 1
                    and window.gallery.active == 1, timeout=3000)
    assert window.settings.source_names == ("Robert", "cid")


def test_closing_stops_every_thread(qtbot: QtBot, harness: Harness, tmp_path: Path,
                                    photos: list[Path]) -> None:
    before = set(threading.enumerate())
    win = make_window(qtbot, harness, tmp_path)
    win.sources.add_source([photos[0]])
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 1, timeout=3000)
    qtbot.keyClick(win, Qt.Key.Key_V)
    qtbot.waitUntil(lambda: win.controller.outputs.virtual_camera_on, timeout=3000)
    assert len(set(threading.enumerate()) - before) >= 3  # pipeline + workers
    win.close()
    assert set(threading.enumerate()) - before == set()
    assert harness.vcams[-1].stopped


def test_source_folder_is_remembered(qtbot: QtBot, harness: Harness, tmp_path: Path,
                                     photos: list[Path]) -> None:
    win = make_window(qtbot, harness, tmp_path)
    win.sources.use_source_folder(photos[0].parent)
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 3, timeout=3000)
    assert [e.state for e in win.gallery.entries].count("failed") == 1  # noface.png
    win.close()
    saved = SettingsStore(tmp_path / "config" / "settings.toml").load().settings
    assert saved.sources_dir == str(photos[0].parent)
    again = make_window(qtbot, harness, tmp_path, saved)
    qtbot.waitUntil(lambda: len(again.gallery.ready_entries()) == 3, timeout=3000)
    # saved sources and the folder's photos are not doubled
    assert len(again.gallery.entries) == 4
    again.close()


def test_fullscreen_hides_the_panels(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.side.isHidden() and window.gallery.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert not window.side.isHidden() and not window.gallery.isHidden()


def test_photos_removed_from_the_folder_stay_removed(qtbot: QtBot, harness: Harness,
                                                     tmp_path: Path, photos: list[Path]) -> None:
    config = tmp_path / "config" / "settings.toml"
    win = make_window(qtbot, harness, tmp_path)
    win.sources.use_source_folder(photos[0].parent)
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 3, timeout=3000)
    by_path = {e.paths[0]: e for e in win.gallery.entries}
    win.sources.remove_source(by_path[str(photos[1])].key)  # bob
    win.sources.remove_source(by_path[str(photos[3])].key)  # noface (a failed tile)
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 2, timeout=3000)
    win.close()
    saved = SettingsStore(config).load().settings
    assert set(saved.removed_sources) == {str(photos[1]), str(photos[3])}
    again = make_window(qtbot, harness, tmp_path, saved)
    qtbot.waitUntil(lambda: len(again.gallery.ready_entries()) == 2, timeout=3000)
    assert sorted(e.paths[0] for e in again.gallery.entries) == [str(photos[0]), str(photos[2])]
    # adding a removed photo by hand wants it back, also at the next start
    again.sources.add_source([photos[1]])
    qtbot.waitUntil(lambda: len(again.gallery.ready_entries()) == 3, timeout=3000)
    assert again.settings.removed_sources == (str(photos[3]),)
    again.close()
    # choosing the folder again is a fresh start: every photo comes back
    third = make_window(qtbot, harness, tmp_path, SettingsStore(config).load().settings)
    third.sources.use_source_folder(photos[0].parent)
    qtbot.waitUntil(lambda: len(third.gallery.entries) == 4, timeout=3000)
    assert third.settings.removed_sources == ()
    third.close()


# -- first run (issue 15) --------------------------------------------------------------

def _first_run_window(qtbot: QtBot, harness: Harness, tmp_path: Path) -> MainWindow:
    store = SettingsStore(tmp_path / "config" / "settings.toml")
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache", build=harness.build,
                                camera_build=harness.camera_build)
    win = MainWindow(store, Settings(), controller)
    qtbot.addWidget(win)
    win.show()
    win.start()
    return win


def test_without_models_the_camera_shows_with_a_banner_and_no_dialog(
        qtbot: QtBot, harness: Harness, tmp_path: Path) -> None:
    """Before: a Models dialog over a blank preview, reopening by itself once closed."""
    harness.fail_build = ctl.ModelsMissing("simswap-224", ("simswap-224", "arcface-simswap"))
    win = _first_run_window(qtbot, harness, tmp_path)
    qtbot.waitUntil(lambda: win.preview.result is not None, timeout=5000)  # the camera
    qtbot.waitUntil(lambda: win.models_banner.isVisible(), timeout=5000)
    assert win.models.dialog is None
    assert "arcface-simswap" in win.models_banner.label.text()
    assert not win.controller.swapping and win.controller.running
    qtbot.waitUntil(lambda: "get the models" in win.preview.hint, timeout=3000)
    # the banner's button opens the dialog; closed, it stays closed
    win.models_banner.button.click()
    assert win.models.dialog is not None and win.models.dialog.isVisible()
    win.models.dialog.reject()
    assert win.models.dialog is None
    cameras = len(harness.cameras)
    qtbot.wait(1500)  # three stats ticks
    assert win.models.dialog is None
    assert len(harness.cameras) == cameras  # the camera was not restarted either
    assert win.preview.result is not None
    win.close()


def test_the_camera_shows_while_the_models_load(qtbot: QtBot, harness: Harness,
                                                tmp_path: Path, photos: list[Path]) -> None:
    """Before: "Loading simswap-224…" on a blank preview for the whole load/convert."""
    release = threading.Event()
    real_build = harness.build

    def slow_build(*args: object) -> ctl.Runtime:
        release.wait(10)
        return real_build(*args)  # type: ignore[arg-type]

    harness.build = slow_build  # type: ignore[method-assign]
    win = _first_run_window(qtbot, harness, tmp_path)
    qtbot.waitUntil(lambda: win.preview.result is not None, timeout=5000)
    assert not win.controller.swapping
    qtbot.waitUntil(lambda: "loads" in win.preview.hint, timeout=3000)
    # the conversion progress, reported from the engine worker thread
    threading.Thread(target=win.controller.on_stage,  # type: ignore[misc]
                     args=("simswap-224", 2, 4, "optimising graph")).start()
    qtbot.waitUntil(lambda: win.conversion.isVisible(), timeout=3000)
    assert win.conversion.value() == 2 and win.conversion.maximum() == 4
    release.set()
    qtbot.waitUntil(lambda: win.controller.swapping, timeout=5000)
    assert not win.conversion.isVisible()
    assert harness.cameras[-1]._stop.is_set()  # the camera-only pipeline handed over
    qtbot.waitUntil(lambda: "Add a photo" in win.preview.hint, timeout=3000)
    win.sources.add_source([photos[0]])
    qtbot.waitUntil(lambda: win.preview.hint == "", timeout=3000)
    win.close()


def test_recordings_go_to_the_videos_folder_by_default(qtbot: QtBot, harness: Harness,
                                                       tmp_path: Path) -> None:
    """Before: the folder swapcam was started in."""
    import platformdirs

    win = _first_run_window(qtbot, harness, tmp_path)
    assert win.outputs.record_folder() == Path(platformdirs.user_videos_dir())
    win.close()


def test_max_faces_box_goes_live_and_is_saved(qtbot: QtBot, harness: Harness,
                                              tmp_path: Path) -> None:
    """Issue 15 item 5: the faces-per-frame limit in the window."""
    win = make_window(qtbot, harness, tmp_path)
    box = win.controls.max_faces
    assert box.value() == 4 and (box.minimum(), box.maximum()) == (1, 32)
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Down)
    assert win.settings.max_faces == 3
    pipeline = harness.pipelines[-1]
    assert pipeline.settings is not None and pipeline.settings.max_faces == 3
    assert len(harness.pipelines) == 1  # no rebuild
    win.close()
    assert SettingsStore(tmp_path / "config" / "settings.toml").load().settings.max_faces == 3


def test_a_refused_value_from_a_control_keeps_the_settings(qtbot: QtBot,
                                                          window: MainWindow) -> None:
    """A value the settings rules refuse is not applied and says why in the status bar."""
    before = window.settings
    window.prefs.change(det_threshold=7.0)
    assert window.settings == before
    assert "det_threshold" in window.statusBar().currentMessage()


def test_texture_mode_and_live_mouth_go_live_and_are_saved(qtbot: QtBot, harness: Harness,
                                                           tmp_path: Path) -> None:
    """Issue 19: "Between swaps" and "Live mouth" in the Blend group."""
    win = make_window(qtbot, harness, tmp_path)
    combo, mouth = win.controls.texture, win.controls.live_mouth
    assert combo.currentData() == "auto" and not mouth.isChecked()
    combo.activated.emit(combo.findData("static"))
    mouth.setChecked(True)
    assert (win.settings.texture, win.settings.live_mouth) == ("static", True)
    pipeline = harness.pipelines[-1]
    assert pipeline.settings is not None and pipeline.settings.texture == "static"
    assert len(harness.pipelines) == 1  # no rebuild
    win.close()
    saved = SettingsStore(tmp_path / "config" / "settings.toml").load().settings
    assert (saved.texture, saved.live_mouth) == ("static", True)


def test_fade_and_refresh_order_go_live_and_are_saved(qtbot: QtBot, harness: Harness,
                                                      tmp_path: Path) -> None:
    """Issue 26: "Swap fade" (ms) and "Swap next" in the Blend group."""
    win = make_window(qtbot, harness, tmp_path)
    fade, order = win.controls.fade, win.controls.refresh_order
    assert fade.value() == round(Settings().fade_ms) and order.currentData() == "auto"
    fade.setValue(400)
    order.activated.emit(order.findData("stalest"))
    assert (win.settings.fade_ms, win.settings.refresh_order) == (400.0, "stalest")
    pipeline = harness.pipelines[-1]
    assert pipeline.settings is not None and pipeline.settings.fade_ms == 400.0
    assert pipeline.settings.refresh_order == "stalest"
    assert len(harness.pipelines) == 1  # no rebuild
    win.close()
    saved = SettingsStore(tmp_path / "config" / "settings.toml").load().settings
    assert (saved.fade_ms, saved.refresh_order) == (400.0, "stalest")


def test_live_record_starts_once_the_first_frame_shows(qtbot: QtBot, harness: Harness,
                                                       tmp_path: Path) -> None:
    """``live --record OUT`` (``app.run_window``): the recording to OUT starts when the
    preview has a frame (the outputs room learns it from the lifecycle's preview tick)."""
    store = SettingsStore(tmp_path / "settings.toml")
    controller = ctl.Controller(tmp_path, tmp_path, build=harness.build,
                                camera_build=harness.camera_build,
                                vcam_factory=harness.vcam, recorder_factory=harness.recorder)
    win = MainWindow(store, Settings(), controller)
    qtbot.addWidget(win)
    out = tmp_path / "out" / "talk.mkv"
    win.outputs.record_on_start = out
    assert not win.outputs.record_wanted  # nothing yet: no frame, no size
    win.start()
    qtbot.waitUntil(lambda: controller.outputs.recording, timeout=5000)
    assert controller.outputs.recording_path == out and win.outputs.record_on_start is None
    assert win.outputs.record_wanted and win.controls.record.isChecked()
    assert harness.recorders[-1].label == str(out)
    win.close()
    assert harness.recorders[-1].stopped


def test_a_memory_notice_shows_in_a_banner_until_dismissed(
        qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25 item 5: what running out of GPU memory turned off is shown in the amber
    strip (before: ``batch_cap.notice`` existed and nothing showed it); Dismiss hides it
    until the notice changes."""
    from realtime.stats import PipelineStats

    notice = "GPU memory is short: the face parser is off (box mask)"
    monkeypatch.setattr(window.controller, "stats",
                        lambda: PipelineStats(memory_notice=notice))
    window.lifecycle._tick_stats()
    assert window.memory_banner.isVisible() and window.memory_banner.label.text() == notice
    window.memory_banner.dismiss.click()
    window.lifecycle._tick_stats()
    assert not window.memory_banner.isVisible()  # the same notice stays dismissed
    notice += "; 1 frame(s) shown unswapped"
    window.lifecycle._tick_stats()
    assert window.memory_banner.isVisible() and "unswapped" in window.memory_banner.label.text()
