"""The window's OS-specific parts: which signals close it on each OS (platform faked at
``sys.platform``, ``signal.signal`` recorded) and its own icon."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
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


def test_no_camera_window_opens_with_a_way_to_a_file(qtbot: QtBot, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 6: with no camera the window opens, the banner says none was found and
    how to play a file, and the Camera list offers the file."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from realtime.io import devices

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", tmp_path / "no-video4linux")
    monkeypatch.setattr("realtime.ui.app.default_cache_dir", lambda: tmp_path / "cache")
    seen: dict[str, Any] = {"banners": []}
    deadline = time.monotonic() + 30.0

    def close_when_told() -> None:
        # the window app.run shows (earlier tests' closed windows may still exist, hidden)
        windows = [w for w in QApplication.topLevelWidgets()
                   if w.windowTitle() == "swapcam" and w.isVisible()]
        text = windows[0].banner.label.text() if windows else ""  # type: ignore[attr-defined]
        if text not in seen["banners"]:
            seen["banners"].append(text)
        if "Camera" not in text:
            if time.monotonic() < deadline:
                QTimer.singleShot(50, close_when_told)
            elif windows:  # never hang the suite: close, and the asserts say what showed
                seen["banner"] = text
                windows[0].close()
            return
        combo = windows[0].controls.camera  # type: ignore[attr-defined]
        seen["banner"] = text
        seen["items"] = [combo.itemText(i) for i in range(combo.count())]
        windows[0].close()

    QTimer.singleShot(200, close_when_told)
    args = argparse.Namespace(command=None, models_dir=tmp_path / "no-models", verbose=False,
                              config=str(tmp_path / "settings.toml"))
    assert app.run(args) == 0
    assert "No camera found. To go on without one" in seen.get("banner", ""), seen
    assert "Video or image file…" in seen["banner"]
    assert seen["items"] == ["Camera 0 (no camera found)", "Video or image file…"]
