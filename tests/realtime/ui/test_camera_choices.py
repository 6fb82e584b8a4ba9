"""The camera combo's entries carry the drivers' names; the platform is faked at
``sys.platform`` and the lowest OS call (sysfs, the enumerator)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

from realtime.io import devices
from realtime.ui.camera_choices import camera_choices, is_camera_spec, unlisted_label
from tests.realtime.io.test_devices import fake_enumerator, make_sysfs


def test_linux_names_without_loopback_outputs(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(tmp_path, {
        0: ("HD Webcam C525", 0, False), 1: ("HD Webcam C525", 1, False),
        9: ("swapcam", 0, True)}))
    assert camera_choices() == [("0", "HD Webcam C525 (0)")]


def test_linux_without_cameras_offers_none(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", tmp_path / "none")
    assert camera_choices() == []
    assert unlisted_label("0") == "Camera 0 (no camera found)"


def test_windows_directshow_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: ["Integrated Camera", "OBS Virtual Camera"],
                                  cv2.CAP_MSMF: ["Integrated Camera"]})
    # saved by name and device path; OBS's virtual camera (our output) is not offered
    assert camera_choices() == [("Integrated Camera <\\\\?\\usb#vid_046d&pid_080>",
                                 "Integrated Camera (0)")]


def test_macos_without_the_enumerator_falls_back_to_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "cv2_enumerate_cameras", None)
    assert camera_choices() == [("0", "Camera 0"), ("1", "Camera 1"), ("2", "Camera 2")]


def test_unlisted_labels(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert unlisted_label(str(clip)) == "File: clip.mp4"
    assert unlisted_label("Cam Link 4K") == "Cam Link 4K (no camera found)"


def test_a_camera_given_by_name_is_labelled_by_its_name(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(devices, "SYSFS_V4L", make_sysfs(tmp_path, {
        2: ("Elgato Cam Link 4K", 0, False)}))
    assert unlisted_label("cam link") == "Elgato Cam Link 4K (2)"
    assert unlisted_label("Logitech") == "Logitech (no camera found)"



def test_camera_specs(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert is_camera_spec("0") and is_camera_spec("/dev/video2")
    assert is_camera_spec("HD Webcam C525") and not is_camera_spec(str(clip))
