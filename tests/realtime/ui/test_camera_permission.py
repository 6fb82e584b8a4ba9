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
