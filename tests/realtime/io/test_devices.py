"""Cameras and virtual cameras by name, each OS faked at the lowest level: ``sys.platform``
plus a fake sysfs tree (Linux), a fake ``cv2_enumerate_cameras`` (Windows, macOS) and a
fake ``pyvirtualcam`` whose ``Camera`` raises what the real backends raise."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import cv2
import pytest

from realtime.io import devices
from realtime.io.devices import CameraInfo, CameraNameError


def make_sysfs(root: Path, nodes: dict[int, tuple[str, int, bool]]) -> Path:
    """A sysfs like the kernel's: class/video4linux/videoN -> devices/.../videoN links,
    with ``name`` and ``index`` files; virtual nodes live under devices/virtual."""
    klass = root / "class" / "video4linux"
    klass.mkdir(parents=True)
    for number, (name, index, virtual) in nodes.items():
        parent = "virtual" if virtual else "pci0000:00/usb1/1-1"
        real = root / "devices" / parent / "video4linux" / f"video{number}"
        real.mkdir(parents=True)
        (real / "name").write_text(name + "\n")
        (real / "index").write_text(f"{index}\n")
        (klass / f"video{number}").symlink_to(real)
    return klass


@pytest.fixture
def linux(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYS_MODULE", tmp_path / "module")
    monkeypatch.setattr(devices, "DEV", tmp_path / "dev")
    (tmp_path / "dev").mkdir()
    return tmp_path


class FakeEnumerated:
    def __init__(self, index: int, name: str, path: str, backend: int) -> None:
        self.index, self.name, self.path, self.backend = index, name, path, backend


def fake_enumerator(monkeypatch: pytest.MonkeyPatch, lists: dict[int, list[str]],
                    fail: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """``cv2_enumerate_cameras`` answering ``lists[api]``; records the APIs asked."""
    asked: list[int] = []

    def enumerate_cameras(api: int = cv2.CAP_ANY) -> list[FakeEnumerated]:
        asked.append(api)
        if api in fail:
            raise OSError("CoInitializeEx failed")
        if api not in lists:  # the real function's answer to a backend of another OS
            raise NotImplementedError(f"Unsupported backend: {api}!")
        return [FakeEnumerated(i, n, f"\\\\?\\usb#vid_046d&pid_08{i}", api)
                for i, n in enumerate(lists[api])]

    module = types.ModuleType("cv2_enumerate_cameras")
    module.enumerate_cameras = enumerate_cameras  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cv2_enumerate_cameras", module)
    return asked


# -- cameras -----------------------------------------------------------------------------


def test_linux_lists_capture_nodes_by_kernel_name(linux: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    klass = make_sysfs(linux, {0: ("HD Webcam C525", 0, False), 1: ("HD Webcam C525", 1, False),
                               10: ("swapcam", 0, True), 2: ("USB Capture", 0, False)})
    monkeypatch.setattr(devices, "SYSFS_V4L", klass)
    scan = devices.list_cameras()
    assert [(c.index, c.name, c.backend, c.virtual) for c in scan.cameras] == [
        (0, "HD Webcam C525", "V4L2", False), (2, "USB Capture", "V4L2", False),
        (10, "swapcam", "V4L2", True)]
    assert scan.cameras[0].path == str(linux / "dev" / "video0")
    assert scan.cameras[0].api == cv2.CAP_V4L2
    # the combo's list: one backend, no loopback outputs
    assert [c.index for c in devices.preferred_cameras(scan)] == [0, 2]


def test_linux_without_v4l2_is_empty_with_a_note(linux: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "SYSFS_V4L", linux / "nothing")
    scan = devices.list_cameras()
    assert scan.cameras == () and "does not exist" in scan.notes[0]


def test_windows_lists_directshow_then_media_foundation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    asked = fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: ["Integrated Camera", "OBS Virtual "
                                                          "Camera"],
                                          cv2.CAP_MSMF: ["Integrated Camera"]})
    scan = devices.list_cameras()
    assert asked == [cv2.CAP_DSHOW, cv2.CAP_MSMF]
    assert [(c.index, c.name, c.backend) for c in scan.cameras] == [
        (0, "Integrated Camera", "DirectShow"), (1, "OBS Virtual Camera", "DirectShow"),
        (0, "Integrated Camera", "Media Foundation")]
    assert scan.cameras[1].virtual  # our own output: listed, never offered as an input
    assert [(c.name, c.backend) for c in devices.preferred_cameras(scan)] == [
        ("Integrated Camera", "DirectShow")]


def test_windows_backend_error_is_a_note_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_enumerator(monkeypatch, {cv2.CAP_MSMF: ["Integrated Camera"]}, fail={cv2.CAP_DSHOW})
    scan = devices.list_cameras()
    assert [c.backend for c in scan.cameras] == ["Media Foundation"]
    assert scan.notes == ("DirectShow: could not list cameras (OSError: CoInitializeEx failed)",)


def test_macos_lists_avfoundation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    asked = fake_enumerator(monkeypatch, {cv2.CAP_AVFOUNDATION: ["FaceTime HD Camera"]})
    scan = devices.list_cameras()
    assert asked == [cv2.CAP_AVFOUNDATION]
    assert [(c.index, c.name, c.backend) for c in scan.cameras] == [
        (0, "FaceTime HD Camera", "AVFoundation")]


def test_missing_enumerator_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "cv2_enumerate_cameras", None)  # import fails
    scan = devices.list_cameras()
    assert scan.cameras == () and devices.ENUMERATOR_HINT in scan.notes[0]


def test_other_systems_get_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "freebsd14")
    assert "not supported on freebsd14" in devices.list_cameras().notes[0]


def test_find_camera_by_exact_then_partial_name() -> None:
    cams = [CameraInfo(0, "HD Webcam C525", "V4L2"), CameraInfo(2, "USB Capture HDMI", "V4L2"),
            CameraInfo(3, "USB Capture HDMI 4K", "V4L2")]
    assert devices.find_camera("hd webcam c525", cams).index == 0
    assert devices.find_camera("webcam", cams).index == 0
    assert devices.find_camera("USB Capture HDMI", cams).index == 2  # exact beats partial
    with pytest.raises(CameraNameError, match="more than one camera"):
        devices.find_camera("usb", cams)
    with pytest.raises(CameraNameError, match=r"no camera is called 'Logitech'.*0: HD Webcam"):
        devices.find_camera("Logitech", cams)


# -- virtual cameras ---------------------------------------------------------------------


def fake_pyvirtualcam(monkeypatch: pytest.MonkeyPatch, backends: dict[str, str | None]) -> list:
    """``pyvirtualcam`` whose backend ``name`` raises ``backends[name]`` (None: opens)."""
    opened: list[tuple[str, str]] = []

    class Camera:
        def __init__(self, width: int, height: int, fps: float, *, backend: str) -> None:
            error = backends[backend]
            if error is not None:
                raise RuntimeError(error)
            self.device = f"{backend} device"
            opened.append(("open", backend))

        def close(self) -> None:
            opened.append(("close", self.device))

    module: Any = types.ModuleType("pyvirtualcam")
    module.Camera = Camera
    module.camera = types.SimpleNamespace(BACKENDS=dict.fromkeys(backends))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", module)
    return opened


def test_windows_obs_usable_unity_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    opened = fake_pyvirtualcam(monkeypatch, {
        "obs": None, "unitycapture": "Unity Capture not found (not installed?)"})
    scan = devices.virtual_cameras()
    obs, unity = scan.backends
    assert obs.usable and obs.label == "OBS Virtual Camera" and scan.usable
    assert not unity.usable and unity.reason == "Unity Capture not found (not installed?)"
    assert "Install.bat" in str(unity.fix)
    assert opened == [("open", "obs"), ("close", "obs device")]  # the probe leaves nothing open


def test_windows_obs_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_pyvirtualcam(monkeypatch, {"obs": "OBS Virtual Camera is not installed",
                                    "unitycapture": "not found"})
    scan = devices.virtual_cameras()
    assert not scan.usable
    assert scan.backends[0].fix == devices.OBS_WINDOWS_FIX


def test_macos_obs_system_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    fake_pyvirtualcam(monkeypatch, {"obs": "OBS Virtual Camera is not installed"})
    (obs,) = devices.virtual_cameras().backends
    assert not obs.usable and "System Settings" in str(obs.fix)


def test_linux_module_not_loaded(linux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "must not be opened"})
    (loop,) = devices.virtual_cameras().backends
    assert not loop.usable and loop.reason == "the v4l2loopback kernel module is not loaded"
    assert "modprobe v4l2loopback" in str(loop.fix)


def test_linux_loaded_without_devices(linux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "must not be opened"})
    (linux / "module" / "v4l2loopback").mkdir(parents=True)
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(linux, {0: ("Webcam", 0, False)}))
    (loop,) = devices.virtual_cameras().backends
    assert loop.reason == "v4l2loopback is loaded but has no devices"
    assert str(loop.fix).startswith("sudo modprobe -r v4l2loopback")


def test_linux_device_permission_then_usable(linux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "must not be opened"})
    (linux / "module" / "v4l2loopback").mkdir(parents=True)
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(linux, {4: ("swapcam", 0, True)}))
    node = linux / "dev" / "video4"
    node.write_bytes(b"")
    node.chmod(0o444)
    writable = {"value": False}
    real_access = os.access
    monkeypatch.setattr(devices.os, "access", lambda p, mode: writable["value"]
                        if str(p) == str(node) else real_access(p, mode))
    (loop,) = devices.virtual_cameras().backends
    assert not loop.usable and "no write permission" in str(loop.reason)
    assert "usermod -aG video" in str(loop.fix)
    writable["value"] = True
    (loop,) = devices.virtual_cameras().backends
    assert loop.usable and loop.devices == (f"{node} (swapcam)",)


def test_pyvirtualcam_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    scan = devices.virtual_cameras()
    assert len(scan.backends) == 2 and not scan.usable
    assert all("pyvirtualcam is not installed" in str(b.reason) for b in scan.backends)


def test_json_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    fake_enumerator(monkeypatch, {cv2.CAP_AVFOUNDATION: ["FaceTime HD Camera"]})
    fake_pyvirtualcam(monkeypatch, {"obs": None})
    data = devices.as_json(devices.list_cameras(), devices.virtual_cameras())
    assert data["cameras"][0] | {"path": None} == {
        "index": 0, "name": "FaceTime HD Camera", "backend": "AVFoundation", "path": None,
        "virtual": False}
    assert data["virtual_camera"]["usable"] is True
    assert data["virtual_camera"]["backends"][0]["name"] == "obs"
