"""With no console (pythonw on Windows: stdout and stderr are None) the output goes to a
log file in the user's log folder, and ``swapcam-gui`` still runs its command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import main
from realtime.desktop import console
from realtime.io import devices


def test_gui_entry_without_console_writes_the_log(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    monkeypatch.setattr(console, "log_folder", lambda: tmp_path / "logs")
    monkeypatch.setattr(sys, "argv", ["swapcam-gui", "devices"])
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", tmp_path / "none")
    assert main.gui_main() == 0
    sys.stdout.flush()
    text = (tmp_path / "logs" / "swapcam.log").read_text(encoding="utf-8")
    assert "Cameras:\n  none found" in text


def test_large_log_starts_afresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    log = tmp_path / "swapcam.log"
    log.write_text("x" * (console.MAX_BYTES + 1))
    assert console.log_to_file(tmp_path) == log
    print("fresh")
    sys.stdout.flush()
    assert log.read_text() == "fresh\n"


class DevNull:
    """stderr as Finder, the Dock or a desktop entry gives it: /dev/null, no terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A launch outside a terminal; returns the dialogs shown."""
    monkeypatch.setattr(sys, "stdout", DevNull())
    monkeypatch.setattr(sys, "stderr", DevNull())
    monkeypatch.setattr(console, "log_folder", lambda: tmp_path / "logs")
    shown: list[str] = []
    monkeypatch.setattr(console, "show_error_dialog", shown.append)
    return shown


def test_a_failed_start_outside_a_terminal_is_logged_and_shown(
        no_terminal: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "argv", ["swapcam-gui", "--no-such-option"])
    assert main.gui_main() == 2
    log = tmp_path / "logs" / "swapcam.log"
    text = log.read_text(encoding="utf-8")
    assert "swapcam: error: unrecognized arguments: --no-such-option" in text
    (dialog,) = no_terminal
    assert "unrecognized arguments: --no-such-option" in dialog and str(log) in dialog


def test_an_unexpected_crash_outside_a_terminal_is_logged_and_shown(
        no_terminal: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("Qt platform plugin 'cocoa' could not be loaded")

    monkeypatch.setattr(main, "build_parser", broken)
    monkeypatch.setattr(sys, "argv", ["swapcam-gui"])
    assert main.gui_main() == 1
    text = (tmp_path / "logs" / "swapcam.log").read_text(encoding="utf-8")
    assert "Traceback" in text and "cocoa" in text
    assert "stopped unexpectedly" in no_terminal[0]


def test_a_terminal_keeps_its_output_and_shows_no_dialog(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    terminal = DevNull()
    monkeypatch.setattr(terminal, "isatty", lambda: True)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(console, "log_folder", lambda: tmp_path / "logs")
    shown: list[str] = []
    monkeypatch.setattr(console, "show_error_dialog", shown.append)
    monkeypatch.setattr(sys, "argv", ["swapcam-gui", "--no-such-option"])
    with pytest.raises(SystemExit):
        main.gui_main()
    assert shown == [] and not (tmp_path / "logs").exists()
    assert "unrecognized arguments" in terminal.text


def test_the_dialog_is_a_qt_message_box(qtbot: object) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen: list[str] = []

    def close() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        box.accept()

    QTimer.singleShot(50, close)
    console.show_error_dialog("swapcam could not start.\n\nno camera")
    assert seen == ["swapcam could not start.\n\nno camera"]
