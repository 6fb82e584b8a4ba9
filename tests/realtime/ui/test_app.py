"""The entry points: command-line choices over saved settings; the window opens and closes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from realtime.config import Settings
from realtime.settings_store import SettingsStore
from realtime.ui import app


def test_command_line_wins_over_saved_settings(tmp_path: Path) -> None:
    saved = Settings(camera="0", model="simswap-224", sources=("a.jpg",), source_names=("Ann",))
    args = argparse.Namespace(camera="clip.mp4", model="inswapper-128", engine=None,
                              source=["b.jpg", "a.jpg"], models_dir=tmp_path, verbose=False)
    merged = app.settings_from_args(saved, args)
    assert merged.camera == "clip.mp4" and merged.model == "inswapper-128"
    assert merged.engine == saved.engine
    assert merged.sources == ("a.jpg", "b.jpg") and merged.source_names == ("Ann", "b")
    assert merged.models_dir == str(tmp_path)
    # `live --max-faces N` reaches the window too
    limited = app.settings_from_args(saved, argparse.Namespace(max_faces=2))
    assert limited.max_faces == 2


def test_run_opens_the_window_and_saves_on_close(qtbot: QtBot, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("detect_every = 4\n")
    monkeypatch.setattr("realtime.ui.app.default_cache_dir", lambda: tmp_path / "cache")
    seen: dict[str, object] = {}
    deadline = time.monotonic() + 30.0

    def close_soon() -> None:
        # the window app.run shows (earlier tests' closed windows may still exist, hidden)
        windows = [w for w in QApplication.topLevelWidgets()
                   if w.windowTitle() == "swapcam" and w.isVisible()]
        if not windows:
            QTimer.singleShot(50, close_soon)
            return
        window = windows[0]
        loading = window.preview.message.startswith("Loading")  # type: ignore[attr-defined]
        if loading and time.monotonic() < deadline:  # never hang: the asserts say what showed
            QTimer.singleShot(50, close_soon)
            return
        seen["banner"] = not window.banner.isHidden()  # type: ignore[attr-defined]
        seen["banner_text"] = window.banner.label.text()  # type: ignore[attr-defined]
        seen["message"] = window.preview.message  # type: ignore[attr-defined]
        window.close()

    QTimer.singleShot(200, close_soon)
    args = argparse.Namespace(command=None, models_dir=tmp_path / "no-models", verbose=False,
                              config=str(config))
    assert app.run(args) == 0
    saved = SettingsStore(config).load().settings
    assert saved.detect_every == 4 and saved.window_geometry
    assert saved.models_dir == str(tmp_path / "no-models")
    # the models folder is empty: the window says what is missing instead of failing
    # (the preview names the models; the banner shows the latest problem, here the
    # missing camera)
    assert "not installed" in str(seen["message"]), seen
    assert "simswap-224" in str(seen["message"]) and "arcface-simswap" in str(seen["message"])
    assert seen["banner"] is True and str(seen["banner_text"]).strip(), seen


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_closes_the_window_like_its_close_button(tmp_path: Path, t1_path: Path,
                                                          signame: str) -> None:
    """Issue 15 item 6: a window ended by SIGTERM lost its session settings."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "QT_QPA_PLATFORM": "offscreen",
           "SWAPCAM_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "main.py", "--models-dir", str(tmp_path / "models"), "-v", "live",
         "--camera", str(t1_path), "--detect-every", "7"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            # The window's jobs run in order (camera, then pipeline); with no models the
            # build fails, and the window logs that on its own thread, from the event
            # loop: imports done, window shown, camera-only preview up, handlers set.
            if "build failed:" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        running.wait(60)
        assert process.poll() is None, "".join(lines)
        process.send_signal(getattr(signal, signame))
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(10)
    output = "".join(lines)
    assert running.is_set(), output
    assert process.returncode == 0, output
    saved = SettingsStore(tmp_path / "config" / "swapcam" / "settings.toml").load().settings
    assert saved.window_geometry  # written by the close path
    assert saved.detect_every == 7 and saved.camera == str(t1_path)


def test_reset_settings_are_named_in_the_window_banner(qtbot: QtBot, tmp_path: Path) -> None:
    """Issue 15 item 3 (the window's part): ``camera_fps = nan`` stopped the window from
    starting; now the store resets it and the banner names each reset key."""
    from realtime.ui import controller as ctl
    from realtime.ui.main_window import MainWindow

    path = tmp_path / "settings.toml"
    path.write_text("camera_fps = nan\ndet_threshold = 7.0\ndetect_every = 4\n")
    loaded = SettingsStore(path).load()
    assert set(loaded.reset_keys) == {"camera_fps", "det_threshold"}
    message = app.startup_message(loaded)
    assert message is not None and "camera_fps" in message and "det_threshold" in message
    win = MainWindow(SettingsStore(path), loaded.settings,
                     ctl.Controller(tmp_path, tmp_path), startup_warning=message)
    qtbot.addWidget(win)
    assert not win.banner.isHidden()
    assert "camera_fps" in win.banner.label.text() and "det_threshold" in win.banner.label.text()
    assert win.controls.camera_fps.value() == round(Settings().camera_fps)
    win.close()


def test_startup_message_names_keys_the_warning_does_not() -> None:
    from realtime.settings_store import LoadResult

    result = LoadResult(Settings(), warning=None, reset_keys=("max_faces",))
    message = app.startup_message(result)
    assert message is not None and "max_faces" in message
    assert app.startup_message(LoadResult(Settings())) is None
