"""Cameras on Windows and macOS as their backends really list them: DirectShow and Media
Foundation number the same devices differently (and OBS's virtual camera is often
DirectShow's device 0); AVFoundation lists in discovery order while OpenCV numbers by
unique ID. A fake ``cv2_enumerate_cameras`` gives those lists, and a fake capture opener
opens the device each backend's list has at that index, so a wrong index opens the wrong
camera, as on a real PC."""

from __future__ import annotations

import sys
import types
from typing import Any

import cv2
import numpy as np
import pytest

from realtime.io import devices
from realtime.io.camera import CameraSource
from realtime.io.camera_pick import camera_spec, device_key, parse_spec
from realtime.io.capture import SourceError, open_source
from realtime.ui.camera_choices import camera_choices, unlisted_label

DSHOW_CLASS = "#{65e8773d-8f56-11d0-a3b9-00a0c9223196}\\global"
MSMF_CLASS = "#{e5323777-f976-4f5b-9b55-b94699c46e44}\\global"
DEVICE = {  # one device interface path per physical device (class tail added per backend)
    "OBS Virtual Camera": "\\\\?\\root#image#0000",
    "Integrated Camera": "\\\\?\\usb#vid_04f2&pid_b6dd&mi_00#6&2d9f1e2&0&0000",
    "USB Cam": "\\\\?\\usb#vid_046d&pid_0825&mi_00#7&1b2c3d&0&0000",
}
TAIL = {cv2.CAP_DSHOW: DSHOW_CLASS, cv2.CAP_MSMF: MSMF_CLASS}


class Listed:
    def __init__(self, index: int, name: str, path: str, backend: int) -> None:
        self.index, self.name, self.path, self.backend = index, name, path, backend


def windows(monkeypatch: pytest.MonkeyPatch, lists: dict[int, list[str]]) -> None:
    """Windows whose backends list ``lists[api]`` (names, in that backend's order)."""
    monkeypatch.setattr(sys, "platform", "win32")

    def enumerate_cameras(api: int = cv2.CAP_ANY) -> list[Listed]:
        return [Listed(i, n, DEVICE[n] + TAIL[api], api) for i, n in enumerate(lists[api])]

    module = types.ModuleType("cv2_enumerate_cameras")
    module.enumerate_cameras = enumerate_cameras  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cv2_enumerate_cameras", module)


class Device:
    """A capture of one named device (or one that did not open)."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def isOpened(self) -> bool:  # OpenCV's name
        return self.name is not None

    def read(self) -> tuple[bool, Any]:
        return True, np.zeros((4, 4, 3), np.uint8)

    def set(self, prop: int, value: float, /) -> bool:
        return True

    def get(self, prop: int, /) -> float:
        return 0.0

    def release(self) -> None:
        pass


def opener(lists: dict[int, list[str]], broken: set[tuple[str, int]] = frozenset()
           ) -> tuple[Any, list[tuple[int | str, int]]]:
    """``cv2.VideoCapture(index, api)`` as Windows answers: the device at that index of
    that backend's list; ANY is Media Foundation's list. ``broken``: (name, api) that fail."""
    tried: list[tuple[int | str, int]] = []

    def factory(device: int | str, api: int) -> Device:
        tried.append((device, api))
        names = lists[cv2.CAP_MSMF if api == cv2.CAP_ANY else api]
        if not isinstance(device, int) or device >= len(names):
            return Device(None)
        name = names[device]
        return Device(None if (name, api) in broken else name)

    return factory, tried


LISTS = {cv2.CAP_DSHOW: ["OBS Virtual Camera", "Integrated Camera", "USB Cam"],
         cv2.CAP_MSMF: ["USB Cam", "Integrated Camera"]}


def test_windows_never_offers_obs_virtual_camera_as_an_input(
        monkeypatch: pytest.MonkeyPatch) -> None:
    windows(monkeypatch, LISTS)
    scan = devices.list_cameras()
    assert [c.name for c in devices.preferred_cameras(scan)] == ["Integrated Camera", "USB Cam"]
    labels = [label for _spec, label in camera_choices()]
    assert labels == ["Integrated Camera (1)", "USB Cam (2)"]
    default = devices.default_camera(scan)
    assert default is not None and default.name == "Integrated Camera"


def test_the_default_camera_0_opens_a_physical_camera_not_obs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    windows(monkeypatch, LISTS)
    factory, tried = opener(LISTS)
    source = open_source("0", capture_factory=factory)  # Settings.camera's default
    assert isinstance(source, CameraSource)
    source.open()
    assert source._capture is not None and source._capture.name == "Integrated Camera"  # type: ignore[attr-defined]
    assert tried == [(1, cv2.CAP_DSHOW)]
    source.close()


def test_an_index_never_opens_another_backends_device_of_that_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lists = {cv2.CAP_DSHOW: ["OBS Virtual Camera", "Integrated Camera", "USB Cam"],
             cv2.CAP_MSMF: ["Integrated Camera", "USB Cam"]}
    windows(monkeypatch, lists)
    # DirectShow cannot open the integrated camera (a driver that works only with MF):
    # Media Foundation's device 1 is the USB camera, its number for this one is 0
    factory, tried = opener(lists, broken={("Integrated Camera", cv2.CAP_DSHOW)})
    source = open_source("1", capture_factory=factory)
    source.open()
    assert source._capture.name == "Integrated Camera"  # type: ignore[union-attr,attr-defined]
    assert tried == [(1, cv2.CAP_DSHOW), (0, cv2.CAP_MSMF)]
    source.close()
    # a device no backend can open fails; it never opens MSMF's or ANY's device 1
    factory, tried = opener(lists, broken={("Integrated Camera", cv2.CAP_DSHOW),
                                           ("Integrated Camera", cv2.CAP_MSMF)})
    with pytest.raises(SourceError):
        open_source("1", capture_factory=factory).open()
    assert (1, cv2.CAP_MSMF) not in tried and (1, cv2.CAP_ANY) not in tried


def test_a_camera_is_saved_by_name_and_path_and_found_again_after_a_replug(
        monkeypatch: pytest.MonkeyPatch) -> None:
    windows(monkeypatch, LISTS)
    saved = dict(camera_choices())
    spec = next(s for s, label in saved.items() if label.startswith("USB Cam"))
    assert parse_spec(spec) == ("USB Cam", DEVICE["USB Cam"] + DSHOW_CLASS)
    # replugged: OBS uninstalled, the USB camera enumerates first in both lists
    after = {cv2.CAP_DSHOW: ["USB Cam", "Integrated Camera"],
             cv2.CAP_MSMF: ["Integrated Camera", "USB Cam"]}
    windows(monkeypatch, after)
    factory, tried = opener(after, broken={("USB Cam", cv2.CAP_DSHOW)})
    source = open_source(spec, capture_factory=factory)
    source.open()
    assert source._capture.name == "USB Cam"  # type: ignore[union-attr,attr-defined]
    assert tried == [(0, cv2.CAP_DSHOW), (1, cv2.CAP_MSMF)]
    assert source.describe().startswith("camera 1 (USB Cam) via")
    source.close()


def test_a_saved_camera_not_connected_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    windows(monkeypatch, {cv2.CAP_DSHOW: ["Integrated Camera"],
                          cv2.CAP_MSMF: ["Integrated Camera"]})
    spec = f"USB Cam <{DEVICE['USB Cam'] + DSHOW_CLASS}>"
    with pytest.raises(SourceError, match="no camera is called 'USB Cam'"):
        open_source(spec)
    assert unlisted_label(spec) == "USB Cam (no camera found)"


def test_device_key_drops_only_the_interface_class() -> None:
    dshow = DEVICE["USB Cam"] + DSHOW_CLASS
    assert device_key(dshow) == device_key(DEVICE["USB Cam"].upper() + MSMF_CLASS)
    assert device_key(dshow) != device_key(DEVICE["Integrated Camera"] + DSHOW_CLASS)
    assert device_key("0x1410000046d085e") == "0x1410000046d085e"


def macos(monkeypatch: pytest.MonkeyPatch, found: list[tuple[str, str]]) -> None:
    """AVFoundation's discovery order (name, uniqueID), numbered as listed."""
    monkeypatch.setattr(sys, "platform", "darwin")

    def enumerate_cameras(api: int = cv2.CAP_ANY) -> list[Listed]:
        return [Listed(i, n, uid, api) for i, (n, uid) in enumerate(found)]

    module = types.ModuleType("cv2_enumerate_cameras")
    module.enumerate_cameras = enumerate_cameras  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cv2_enumerate_cameras", module)


def test_macos_indices_follow_opencvs_unique_id_order(monkeypatch: pytest.MonkeyPatch) -> None:
    macos(monkeypatch, [("FaceTime HD Camera", "0x8020000005ac8514"),
                        ("OBS Virtual Camera", "7626645E-4425-469E-9D8B-97E0FA59AC75"),
                        ("Logitech BRIO", "0x1410000046d085e")])
    scan = devices.list_cameras()
    by_name = {c.name: c.index for c in scan.cameras}
    # OpenCV sorts AVCaptureDevice by uniqueID: "0x14..." < "0x80..." < "7626..."
    assert by_name == {"Logitech BRIO": 0, "FaceTime HD Camera": 1, "OBS Virtual Camera": 2}
    assert devices.find_camera("FaceTime", scan.cameras).index == 1
    assert [c.name for c in devices.preferred_cameras(scan)] == ["Logitech BRIO",
                                                                  "FaceTime HD Camera"]
    spec = camera_spec(devices.find_camera("FaceTime", scan.cameras))
    assert spec == "FaceTime HD Camera <0x8020000005ac8514>"
    source = open_source(spec)
    assert isinstance(source, CameraSource)
    assert source.targets == ((1, cv2.CAP_AVFOUNDATION),)


def test_linux_keeps_the_index_as_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    info = devices.CameraInfo(2, "USB Cam", devices.V4L2, "/dev/video2")
    assert camera_spec(info) == "2"


def test_an_old_index_setting_is_labelled_by_the_camera_it_opens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    windows(monkeypatch, LISTS)
    assert unlisted_label("2") == "USB Cam (2)"
    assert unlisted_label("0") == "Integrated Camera (1)"  # 0 is OBS: the physical one opens


def test_a_camera_given_by_name_opens_in_every_backend_that_lists_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name
    windows(monkeypatch, LISTS)
    source = open_source("usb cam")  # swapcam live --camera "usb cam"
    assert isinstance(source, CameraSource)
    assert source.targets == ((2, cv2.CAP_DSHOW), (0, cv2.CAP_MSMF))
