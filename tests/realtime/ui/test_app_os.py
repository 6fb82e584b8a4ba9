"""The window's OS-specific parts: which signals close it on each OS (platform faked at
``sys.platform``, ``signal.signal`` recorded) and its own icon."""

from __future__ import annotations

import signal
import sys
from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from realtime.desktop.icons import SIZES
from realtime.ui import app


@pytest.mark.parametrize(("platform", "names"), [
    ("win32", ("SIGINT", "SIGBREAK")),
    ("darwin", ("SIGTERM", "SIGINT", "SIGHUP")),
    ("linux", ("SIGTERM", "SIGINT", "SIGHUP")),
])
def test_signal_names_per_os(monkeypatch: pytest.MonkeyPatch, platform: str,
                             names: tuple[str, ...]) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert app.close_signal_names() == names


def record_handlers(monkeypatch: pytest.MonkeyPatch) -> dict[int, Any]:
    installed: dict[int, Any] = {}

    def fake_signal(signum: int, handler: Any) -> Any:
        previous = installed.get(signum, signal.SIG_DFL)
        installed[signum] = handler
        return previous

    monkeypatch.setattr(signal, "signal", fake_signal)
    return installed


def test_windows_installs_ctrl_c_and_ctrl_break_not_sigterm(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(signal, "SIGBREAK", 21, raising=False)  # Windows' number
    installed = record_handlers(monkeypatch)
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    restore = app.close_on_signals(window)
    assert set(installed) == {signal.SIGINT, 21}
    installed[21](21, None)  # Ctrl-Break
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)
    restore()
    assert installed == {signal.SIGINT: signal.SIG_DFL, 21: signal.SIG_DFL}


def test_macos_installs_term_int_hup(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    installed = record_handlers(monkeypatch)
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    restore = app.close_on_signals(window)
    assert set(installed) == {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    installed[signal.SIGHUP](signal.SIGHUP, None)  # the terminal was closed
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)
    restore()


def test_window_icon_has_every_size(qtbot: QtBot) -> None:
    icon = app.window_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(SIZES)
    assert icon.pixmap(QSize(48, 48)).width() == 48
