"""A camera chosen by name opens through the backend that listed it; each OS's backend
order; the no-camera message names the cameras found and the way to a file. The
platform is faked at ``sys.platform`` plus the lowest OS call (sysfs, the enumerator)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import pytest

from realtime.io import devices
from realtime.io.capture import (
    CameraSource,
    CameraUnavailable,
    SourceError,
    default_camera_apis,
    open_source,
)
from tests.realtime.io.test_devices import fake_enumerator, make_sysfs


class NeverOpens:
    """``cv2.VideoCapture`` of a device that is not there."""

    def isOpened(self) -> bool:  # OpenCV's name
        return False

    def read(self) -> tuple[bool, Any]:
        return False, None

    def set(self, prop: int, value: float, /) -> bool:
        return False

    def get(self, prop: int, /) -> float:
        return 0.0

    def release(self) -> None:
        pass


@pytest.mark.parametrize(("platform", "spelling", "expected"), [
    ("win32", "Windows", (cv2.CAP_DSHOW, cv2.CAP_MSMF, cv2.CAP_ANY)),
    ("darwin", "Darwin", (cv2.CAP_AVFOUNDATION, cv2.CAP_ANY)),
    ("linux", "Linux", (cv2.CAP_V4L2, cv2.CAP_ANY)),
])
def test_backend_order_per_os(monkeypatch: pytest.MonkeyPatch, platform: str, spelling: str,
                              expected: tuple[int, ...]) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert default_camera_apis() == expected
    assert CameraSource(0).apis == expected
    monkeypatch.setattr(sys, "platform", "linux" if platform != "linux" else "win32")
    assert default_camera_apis(spelling) == expected  # platform.system()'s spelling too


def test_linux_camera_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(tmp_path, {
        0: ("Integrated Webcam", 0, False), 2: ("Elgato Cam Link 4K", 0, False)}))
    source = open_source("cam link", width=1280, height=720, fps=30.0)
    assert isinstance(source, CameraSource)
    assert (source.device, source.apis, source.width) == (2, (cv2.CAP_V4L2,), 1280)
    assert source.describe() == "camera 2 (Elgato Cam Link 4K) (not open)"


def test_windows_camera_by_name_uses_directshow_index(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.chdir(tmp_path)  # no file of that name
    fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: ["OBS Virtual Camera", "Integrated Camera"],
                                  cv2.CAP_MSMF: ["Integrated Camera"]})
    source = open_source("Integrated Camera")
    assert isinstance(source, CameraSource)
    assert (source.device, source.apis) == (1, (cv2.CAP_DSHOW,))


def test_unknown_name_lists_the_cameras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.chdir(tmp_path)
    fake_enumerator(monkeypatch, {cv2.CAP_AVFOUNDATION: ["FaceTime HD Camera"]})
    with pytest.raises(SourceError) as info:
        open_source("Logitech")
    message = str(info.value)
    assert "no such file or folder, and no camera is called 'Logitech'" in message
    assert "0: FaceTime HD Camera" in message and "swapcam devices" in message


def test_no_camera_message_says_none_found_and_how_to_play_a_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", tmp_path / "none")
    camera = CameraSource(0, capture_factory=lambda source, api: NeverOpens())
    with pytest.raises(CameraUnavailable) as info:
        camera.open()
    message = str(info.value)
    assert message.startswith("No camera found. To go on without one, play a video file")
    assert "'Video or image file…'" in message and "--camera PATH" in message
    assert "Tried camera 0:\n  - camera 0 via V4L2: not opened" in message


def test_camera_that_will_not_open_names_the_others(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(tmp_path, {
        0: ("HD Webcam C525", 0, False)}))
    camera = CameraSource(3, capture_factory=lambda source, api: NeverOpens())
    with pytest.raises(CameraUnavailable) as info:
        camera.open()
    message = str(info.value)
    assert message.startswith("could not open camera 3; tried:")
    assert "cameras found: 0: HD Webcam C525 (V4L2)" in message
    assert "not used by another program, or play a video file" in message


def test_image_files_are_read_without_cv2_imread(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """cv2.imread cannot open non-ANSI paths on Windows: images are read by Python."""
    import numpy as np

    from realtime.io.capture import FileSource

    folder = tmp_path / "José 王"
    folder.mkdir()
    image = np.full((24, 32, 3), 90, np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    (folder / "a.png").write_bytes(data.tobytes())
    (folder / "b.png").write_bytes(b"")  # unreadable: skipped
    monkeypatch.setattr(cv2, "imread", lambda *a: pytest.fail("cv2.imread was used"))
    for source in (FileSource(folder / "a.png"), FileSource(folder)):
        source.open()
        frame = source.read()
        source.close()
        assert frame is not None and frame.image.shape == (24, 32, 3)


def test_windows_long_path_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.realtime.test_system import LONG, fake_winreg

    monkeypatch.setattr(sys, "platform", "win32")
    fake_winreg(monkeypatch, 0)
    fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: [], cv2.CAP_MSMF: []})
    with pytest.raises(SourceError, match="unless long paths are enabled"):
        open_source(LONG)


@pytest.mark.parametrize(("platform", "where"), [
    ("win32", "Let desktop apps access your camera"),
    ("darwin", "System Settings → Privacy & Security → Camera"),
])
def test_blocked_camera_hint_per_os(monkeypatch: pytest.MonkeyPatch, platform: str,
                                    where: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: ["Integrated Camera"], cv2.CAP_MSMF: [],
                                  cv2.CAP_AVFOUNDATION: ["FaceTime HD Camera"]})
    camera = CameraSource(0, capture_factory=lambda source, api: NeverOpens())
    with pytest.raises(CameraUnavailable) as info:
        camera.open()
    message = str(info.value)
    assert where in message and "cameras found: 0: " in message
    assert "DSHOW" in message if platform == "win32" else "AVFOUNDATION" in message
