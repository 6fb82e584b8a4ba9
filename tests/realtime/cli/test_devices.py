"""``swapcam devices``: text and JSON through main(), exit 0 with no cameras."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest

from main import main
from realtime.io import devices
from tests.realtime.io.test_devices import fake_enumerator, fake_pyvirtualcam, make_sysfs


def test_no_cameras_exit_zero_with_the_way_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L", tmp_path / "none")
    monkeypatch.setattr(devices, "SYS_MODULE", tmp_path / "module")
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "must not be opened"})
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Cameras:\n  none found" in out and "--camera PATH" in out
    assert "v4l2loopback: not usable: the v4l2loopback kernel module is not loaded" in out
    assert "fix: install and load v4l2loopback" in out


def test_json_lists_linux_cameras_and_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(devices, "SYSFS_V4L",
                        make_sysfs(tmp_path, {0: ("Webcam", 0, False), 5: ("swapcam", 0, True)}))
    monkeypatch.setattr(devices, "SYS_MODULE", tmp_path / "module")
    (tmp_path / "module" / "v4l2loopback").mkdir(parents=True)
    monkeypatch.setattr(devices, "DEV", tmp_path)
    (tmp_path / "video5").write_bytes(b"")
    fake_pyvirtualcam(monkeypatch, {"v4l2loopback": "must not be opened"})
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(c["index"], c["name"], c["backend"]) for c in data["cameras"]] == [
        (0, "Webcam", "V4L2"), (5, "swapcam", "V4L2")]
    assert data["virtual_camera"]["usable"] is True


def test_windows_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    fake_enumerator(monkeypatch, {cv2.CAP_DSHOW: ["Integrated Camera"],
                                  cv2.CAP_MSMF: ["Integrated Camera"]})
    fake_pyvirtualcam(monkeypatch, {"obs": None, "unitycapture": "not installed"})
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert " 0  Integrated Camera  [DirectShow]" in out
    assert " 0  Integrated Camera  [Media Foundation]" in out
    assert "OBS Virtual Camera: ready" in out and "Unity Capture: not usable: not installed" in out
