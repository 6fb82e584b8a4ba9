"""The OS check and Windows' path-length rule, with ``sys.platform`` and ``winreg``
faked (the registry value Windows keeps for long paths)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from realtime import system


@pytest.mark.parametrize(("platform", "family"), [
    ("linux", "linux"), ("win32", "windows"), ("cygwin", "windows"), ("darwin", "macos"),
    ("freebsd14", "other"),
])
def test_os_family(monkeypatch: pytest.MonkeyPatch, platform: str, family: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert system.os_family() == family


def fake_winreg(monkeypatch: pytest.MonkeyPatch, value: int | None) -> list[tuple[Any, ...]]:
    asked: list[tuple[Any, ...]] = []

    class Key:
        def __enter__(self) -> Key:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def open_key(root: object, sub: str) -> Key:
        asked.append((root, sub))
        return Key()

    def query(key: Key, name: str) -> tuple[int, int]:
        asked.append((name,))
        if value is None:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return value, 4  # REG_DWORD

    module: Any = types.ModuleType("winreg")
    module.HKEY_LOCAL_MACHINE = "HKLM"
    module.OpenKey, module.QueryValueEx = open_key, query
    monkeypatch.setitem(sys.modules, "winreg", module)
    return asked


LONG = "C:\\Users\\someone\\" + "very long folder name\\" * 12 + "clip.mp4"


@pytest.mark.parametrize("value", [0, None])
def test_windows_without_long_paths_explains(monkeypatch: pytest.MonkeyPatch,
                                             value: int | None) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    asked = fake_winreg(monkeypatch, value)
    message = system.long_path_problem(LONG)
    assert message is not None and f"{len(LONG)} characters" in message
    assert "LongPathsEnabled 1" in message
    assert asked[0] == ("HKLM", r"SYSTEM\CurrentControlSet\Control\FileSystem")
    assert system.long_path_problem("C:\\short\\clip.mp4") is None


def test_windows_with_long_paths_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_winreg(monkeypatch, 1)
    assert system.long_path_problem(LONG) is None


def test_posix_has_no_such_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert system.long_path_problem(LONG) is None


def test_helper_processes_get_no_console_and_no_ctrl_c(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: object) -> None:
    """ffmpeg for recordings and files: on Windows a new process group and no console window
    (swapcam-gui has none; a console program started from it would open one); on POSIX a
    new session. The recorder and the video writer pass these to ``subprocess.Popen``."""
    import subprocess

    from realtime.io import video
    from realtime.io.sinks import RecorderSink

    monkeypatch.setattr(sys, "platform", "win32")
    assert system.helper_process_kwargs() == {"creationflags": 0x00000200 | 0x08000000}
    assert video._new_group_kwargs() == system.helper_process_kwargs()
    seen: dict[str, Any] = {}

    class Popen:
        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            seen.update(kwargs)
            raise OSError("not really starting ffmpeg")

    monkeypatch.setattr(subprocess, "Popen", Popen)
    sink = RecorderSink(f"{tmp_path}/x.mkv", 64, 48, 30.0, ffmpeg="ffmpeg")
    with pytest.raises(Exception, match="could not start ffmpeg"):
        sink.start()
    sink.stop()
    assert seen["creationflags"] == 0x08000200 and "start_new_session" not in seen
    monkeypatch.setattr(sys, "platform", "linux")
    assert system.helper_process_kwargs() == {"start_new_session": True}
