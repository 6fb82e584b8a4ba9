"""macOS's camera permission (TCC) as AVFoundation gives it: a fake ``AVFoundation`` whose
``requestAccessForMediaType:completionHandler:`` must be called on the main thread and
answers later from a queue of its own, as the real one does after the person clicks."""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

import pytest
from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from realtime.ui import camera_permission
from realtime.ui.camera_permission import CameraPermission


class FakeAV(types.ModuleType):
    AVMediaTypeVideo = "vide"

    def __init__(self, status: int, answer: bool = True) -> None:
        super().__init__("AVFoundation")
        self.state, self.answer = status, answer
        self.requests: list[bool] = []  # each request: on the main thread?
        self.answered_on: list[bool] = []
        self.AVCaptureDevice = self  # the class methods live on the device class

    def authorizationStatusForMediaType_(self, media: str) -> int:
        assert media == "vide"
        return self.state

    def requestAccessForMediaType_completionHandler_(self, media: str, handler: Any) -> None:
        self.requests.append(threading.current_thread() is threading.main_thread())

        def person_clicks() -> None:
            self.state = camera_permission.AUTHORIZED if self.answer else camera_permission.DENIED
            self.answered_on.append(threading.current_thread() is threading.main_thread())
            handler(self.answer)

        threading.Timer(0.05, person_clicks).start()


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(status: int, answer: bool = True) -> FakeAV:
        module = FakeAV(status, answer)
        monkeypatch.setattr(sys, "platform", "darwin")
        monkeypatch.setitem(sys.modules, "AVFoundation", module)
        return module
    return install


def test_first_launch_asks_on_the_gui_thread_then_grants_there(mac: Any, qtbot: QtBot) -> None:
    av = mac(camera_permission.NOT_DETERMINED)
    permission = CameraPermission()
    threads: list[bool] = []
    permission.granted.connect(lambda: threads.append(QThread.currentThread().isMainThread()))
    with qtbot.waitSignal(permission.granted, timeout=3000):
        assert permission.ensure() is False  # no camera open while the system asks
        assert permission.ensure() is False  # asked once only
    assert av.requests == [True] and av.answered_on == [False]
    assert threads == [True]  # the retry runs on the GUI thread
    assert permission.ensure() is True


def test_refused_says_where_to_allow_it(mac: Any, qtbot: QtBot) -> None:
    mac(camera_permission.NOT_DETERMINED, answer=False)
    permission = CameraPermission()
    with qtbot.waitSignal(permission.refused, timeout=3000) as blocker:
        permission.ensure()
    assert "Privacy & Security → Camera" in blocker.args[0]
    with qtbot.waitSignal(permission.refused, timeout=1000):
        assert permission.ensure() is False  # denied now: said at once, nothing asked


def test_restricted_and_other_systems(mac: Any, monkeypatch: pytest.MonkeyPatch,
                                      qtbot: QtBot) -> None:
    av = mac(camera_permission.RESTRICTED)
    permission = CameraPermission()
    with qtbot.waitSignal(permission.refused, timeout=1000) as blocker:
        assert permission.ensure() is False
    assert "parental controls" in blocker.args[0] and av.requests == []
    monkeypatch.setattr(sys, "platform", "win32")
    assert permission.ensure() is True and permission.status() == "not_needed"
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "AVFoundation", None)  # pyobjc missing: OpenCV asks
    assert permission.ensure() is True


# -- the window: no camera opened before the answer, opened once allowed -------------------


@pytest.fixture
def mac_camera(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Only the camera permission on macOS: the rest of the window stays on this OS (a
    faked darwin would send the model downloads through macOS's proxy module)."""
    def install(status: int, answer: bool = True) -> FakeAV:
        module = FakeAV(status, answer)
        monkeypatch.setattr(camera_permission, "os_family", lambda: "macos")
        monkeypatch.setitem(sys.modules, "AVFoundation", module)
        return module
    return install


def test_window_opens_the_camera_only_after_the_person_allows_it(
        mac_camera: Any, qtbot: QtBot, tmp_path: Any) -> None:
    from tests.realtime.ui.test_main_window import Harness, make_window

    av = mac_camera(camera_permission.NOT_DETERMINED)
    harness = Harness()
    opened_before_answer: list[int] = []
    real_request = av.requestAccessForMediaType_completionHandler_

    def request(media: str, handler: Any) -> None:
        opened_before_answer.append(len(harness.cameras) + len(harness.pipelines))
        real_request(media, handler)

    av.requestAccessForMediaType_completionHandler_ = request  # type: ignore[method-assign]
    window = make_window(qtbot, harness, tmp_path)  # waits until the pipeline runs
    assert opened_before_answer == [0] and av.requests == [True]
    assert av.state == camera_permission.AUTHORIZED and harness.pipelines
    window.close()


def test_window_says_where_to_allow_a_refused_camera(mac_camera: Any, qtbot: QtBot,
                                                     tmp_path: Any) -> None:
    from realtime.config import Settings
    from realtime.settings_store import SettingsStore
    from realtime.ui import controller as ctl
    from realtime.ui.main_window import MainWindow
    from tests.realtime.ui.test_main_window import Harness

    mac_camera(camera_permission.DENIED)
    harness = Harness()
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache", build=harness.build,
                                camera_build=harness.camera_build, vcam_factory=harness.vcam,
                                recorder_factory=harness.recorder)
    window = MainWindow(SettingsStore(tmp_path / "settings.toml"), Settings(), controller)
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.wait(200)
    assert harness.cameras == [] and harness.pipelines == []
    assert "Privacy & Security → Camera" in window.banner.label.text()
    window.close()
