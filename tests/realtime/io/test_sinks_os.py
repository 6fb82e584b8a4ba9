"""A virtual camera that cannot open says, per backend of this OS, why and how to fix it
(platform faked at ``sys.platform``; ``pyvirtualcam`` faked with the backends' errors)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from realtime.io import devices
from realtime.io.sinks import VirtualCameraSink, VirtualCameraUnavailable, virtual_camera_help


def fake_pyvirtualcam(monkeypatch: pytest.MonkeyPatch, errors: dict[str, str]) -> None:
    class Camera:
        def __init__(self, width: int, height: int, fps: float, *, backend: str | None = None,
                     **kw: Any) -> None:
            names = [backend] if backend else list(errors)
            raise RuntimeError("\n".join(f"'{n}' backend: {errors[n]}" for n in names)
                               if backend is None else errors[backend])

    module: Any = types.ModuleType("pyvirtualcam")
    module.Camera = Camera
    module.PixelFormat = types.SimpleNamespace(BGR="BGR", I420="I420")
    module.camera = types.SimpleNamespace(BACKENDS=dict.fromkeys(errors))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", module)


def start_error(sink: VirtualCameraSink) -> str:
    with pytest.raises(VirtualCameraUnavailable) as info:
        sink.start()
    sink.stop()
    return str(info.value)


def test_windows_names_each_backend_and_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_pyvirtualcam(monkeypatch, {"obs": "OBS Virtual Camera is not installed",
                                    "unitycapture": "Unity Capture not found"})
    message = start_error(VirtualCameraSink(320, 240, 30.0))
    assert message.startswith("no virtual camera could be opened")
    assert "OBS Virtual Camera: OBS Virtual Camera is not installed\n  fix: install OBS " \
        "Studio" in message
    assert "Unity Capture: Unity Capture not found\n  fix: install Unity Capture" in message


def test_macos_names_the_system_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    fake_pyvirtualcam(monkeypatch, {"obs": "OBS Virtual Camera is not installed"})
    message = start_error(VirtualCameraSink(320, 240, 30.0, backend="obs"))
    assert "allow its system extension in System Settings" in message


def test_linux_module_not_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYS_MODULE", tmp_path)
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "No v4l2 loopback device found"})
    message = start_error(VirtualCameraSink(320, 240, 30.0))
    assert "v4l2loopback: the v4l2loopback kernel module is not loaded" in message
    assert "sudo modprobe v4l2loopback devices=1" in message


@pytest.mark.parametrize(("platform", "expected"), [
    ("win32", "Windows: install OBS Studio"), ("darwin", "macOS: install OBS Studio"),
    ("linux", "Linux: install and load the v4l2loopback"), ("sunos5", "no virtual camera"),
])
def test_general_help_follows_sys_platform(monkeypatch: pytest.MonkeyPatch, platform: str,
                                           expected: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert expected in virtual_camera_help()
