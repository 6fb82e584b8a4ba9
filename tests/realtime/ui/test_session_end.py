"""Windows log-off reaches a GUI process as window messages, not console events: the
filter is fed the ``MSG`` structures Windows sends (``WM_QUERYENDSESSION``, then
``WM_ENDSESSION`` with wParam TRUE when the session really ends)."""

from __future__ import annotations

import ctypes
import sys

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from realtime.ui import session_end
from realtime.ui.hotkeys_windows import MSG


def send(event_filter: session_end.SessionEndFilter, message: int, w_param: int) -> bool:
    msg = MSG(None, message, w_param, 0)
    handled, _result = event_filter.nativeEventFilter(b"windows_generic_MSG",
                                                      ctypes.addressof(msg))
    return handled


def test_log_off_runs_the_shutdown_once(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    calls: list[str] = []
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    event_filter = session_end.install(app, lambda: calls.append("shutdown"))
    assert event_filter is not None
    try:
        assert not send(event_filter, session_end.WM_QUERYENDSESSION, 0)
        assert calls == []  # asked only: another program may still cancel the log-off
        assert not send(event_filter, session_end.WM_ENDSESSION, 0)  # cancelled
        assert calls == []
        assert not send(event_filter, session_end.WM_ENDSESSION, 1)  # Qt answers it too
        assert not send(event_filter, session_end.WM_ENDSESSION, 1)  # a second window
        assert calls == ["shutdown"]
    finally:
        app.removeNativeEventFilter(event_filter)


def test_other_systems_install_nothing(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    assert session_end.install(app, lambda: None) is None
