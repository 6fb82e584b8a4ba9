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
