"""Cameras and virtual-camera outputs by name, per OS, without opening a camera.

Cameras: on Linux the names the kernel gives each ``/dev/videoN`` capture node
(``/sys/class/video4linux/videoN/name``); on Windows DirectShow's and Media
Foundation's device lists, on macOS AVFoundation's, both through
``cv2-enumerate-cameras`` (its indices are the ones OpenCV opens with that backend).

Virtual cameras: the pyvirtualcam backends this OS has (v4l2loopback on Linux; OBS
Virtual Camera and Unity Capture on Windows; OBS on macOS), each usable or not, with
the reason and the fix. On Linux the kernel's lists are read; on Windows and macOS
pyvirtualcam opens and closes each backend once at a tiny size (its only test).

The OS check is ``sys.platform`` read at call time and every OS call goes through a
module-level name (``SYSFS_V4L``, ``SYS_MODULE``, ``DEV``, the imported module), so
tests fake a platform at the lowest level.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2

from realtime.io.device_messages import say
from realtime.system import os_family

__all__ = ["CameraInfo", "CameraNameError", "CameraScan", "VirtualBackend", "VirtualScan",
           "as_json", "find_camera", "list_cameras", "os_family", "preferred_cameras",
           "virtual_cameras"]

SYSFS_V4L = Path("/sys/class/video4linux")
SYS_MODULE = Path("/sys/module")
DEV = Path("/dev")

V4L2, DSHOW, MSMF, AVFOUNDATION = "V4L2", "DirectShow", "Media Foundation", "AVFoundation"
# backend label -> OpenCV capture API
CAPTURE_APIS: dict[str, int] = {
    V4L2: cv2.CAP_V4L2, DSHOW: cv2.CAP_DSHOW, MSMF: cv2.CAP_MSMF,
    AVFOUNDATION: cv2.CAP_AVFOUNDATION,
}
ENUMERATOR = "cv2_enumerate_cameras"
ENUMERATOR_HINT = "pip install cv2-enumerate-cameras"


@dataclass(frozen=True)
class CameraInfo:
    """One camera as OpenCV can open it: ``cv2.VideoCapture(index, CAPTURE_APIS[backend])``."""

    index: int
    name: str
    backend: str
    path: str | None = None
    # a virtual-camera output (v4l2loopback, OBS Virtual Camera, Unity Capture): another
    # program's output or our own; offered as an input it would feed swapcam to itself
    virtual: bool = False

    @property
    def api(self) -> int:
        return CAPTURE_APIS[self.backend]


@dataclass(frozen=True)
class CameraScan:
    """The cameras found, and why the list may be incomplete."""

    cameras: tuple[CameraInfo, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VirtualBackend:
    """A pyvirtualcam backend on this OS: ``usable``, or why not (``reason``) and ``fix``."""

    name: str  # pyvirtualcam's backend name
    label: str
    usable: bool
    devices: tuple[str, ...] = ()
    reason: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class VirtualScan:
    backends: tuple[VirtualBackend, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> bool:
        return any(b.usable for b in self.backends)


# -- cameras -----------------------------------------------------------------------------


def _node_number(path: Path) -> int:
    digits = path.name[len("video"):]
    return int(digits) if digits.isdigit() else -1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _is_virtual(node: Path) -> bool:
    return "/devices/virtual/" in os.path.realpath(node)


def linux_cameras() -> CameraScan:
    """Every V4L2 capture node: index ``N`` of ``/dev/videoN`` and the driver's name.
    Nodes whose ``index`` is not 0 (a camera's metadata node) are skipped."""
    if not SYSFS_V4L.is_dir():
        return CameraScan((), (say("no-v4l2", path=SYSFS_V4L),))
    cameras = []
    for node in sorted(SYSFS_V4L.glob("video*"), key=_node_number):
        number = _node_number(node)
        if number < 0 or (_read(node / "index") or "0") != "0":
            continue
        name = _read(node / "name") or f"video{number}"
        cameras.append(CameraInfo(number, name, V4L2, str(DEV / f"video{number}"),
                                  virtual=_is_virtual(node)))
    return CameraScan(tuple(cameras))


def _enumerated(apis: tuple[str, ...]) -> CameraScan:
    try:
        enumerator: Any = importlib.import_module(ENUMERATOR)
    except ImportError:
        return CameraScan((), (say("no-enumerator", hint=ENUMERATOR_HINT),))
    cameras: list[CameraInfo] = []
    notes: list[str] = []
    for label in apis:
        try:
            found = enumerator.enumerate_cameras(CAPTURE_APIS[label])
        except Exception as exc:  # a COM / Objective-C error names the cause
            notes.append(say("list-failed", backend=label, kind=type(exc).__name__, error=exc))
            continue
        listed = [CameraInfo(int(c.index), str(c.name), label, c.path and str(c.path),
                             virtual=is_virtual_output(str(c.name))) for c in found]
        cameras += avfoundation_order(listed) if label == AVFOUNDATION else listed
    return CameraScan(tuple(cameras), tuple(notes))


# The outputs pyvirtualcam writes to (swapcam's own virtual camera), by the name each
# registers as a camera: OBS's DirectShow filter / macOS extension, Unity Capture's filter.
VIRTUAL_OUTPUT_NAMES = ("obs virtual camera", "obs-camera", "unity video capture")


def is_virtual_output(name: str) -> bool:
    """A camera that is a virtual-camera output swapcam may be writing to."""
    folded = name.casefold()
    return any(folded.startswith(known) for known in VIRTUAL_OUTPUT_NAMES)


def avfoundation_order(cameras: list[CameraInfo]) -> list[CameraInfo]:
    """The AVFoundation cameras with OpenCV's indices: OpenCV numbers the devices by their
    ``uniqueID`` in sorted order (``cap_avfoundation_mac.mm``), not in the order the system
    lists them, so the index comes from each camera's unique ID (its ``path``). Unchanged
    when an ID is missing."""
    if not cameras or any(not c.path for c in cameras):
        return cameras
    # NSString compare: compares UTF-16 code units; unique IDs are ASCII, so code points agree
    ranked = sorted(cameras, key=lambda c: str(c.path))
    return [replace(c, index=rank) for rank, c in enumerate(ranked)]


def list_cameras(platform: str | None = None) -> CameraScan:
    """The cameras of this OS (``platform``: a ``sys.platform`` value, for tests), in
    the preferred backend's order first."""
    family = os_family(platform)
    if family == "linux":
        return linux_cameras()
    if family == "windows":
        # DirectShow first: the capture backend swapcam tries first on Windows
        return _enumerated((DSHOW, MSMF))
    if family == "macos":
        return _enumerated((AVFOUNDATION,))
    return CameraScan((), (say("os-unsupported", platform=sys.platform),))


def preferred_cameras(scan: CameraScan) -> list[CameraInfo]:
    """One entry per camera: the first backend's list (the others repeat the same
    devices), without virtual-camera outputs: on every OS, swapcam's own output is never
    offered as its input."""
    if not scan.cameras:
        return []
    first = scan.cameras[0].backend
    return [c for c in scan.cameras if c.backend == first and not c.virtual]


def default_camera(scan: CameraScan) -> CameraInfo | None:
    """The camera to open when none was chosen: the first physical one (index 0 is OBS's
    virtual camera on many Windows PCs: opening it would loop swapcam's output back)."""
    physical = preferred_cameras(scan)
    return physical[0] if physical else None


class CameraNameError(LookupError):
    """No camera, or more than one, has the name asked for."""


def find_camera(name: str, cameras: list[CameraInfo] | tuple[CameraInfo, ...]) -> CameraInfo:
    """The camera called ``name``: an exact (case-insensitive) name first, else the one
    camera whose name contains it. Raises ``CameraNameError`` listing the names."""
    wanted = name.strip().casefold()
    exact = [c for c in cameras if c.name.casefold() == wanted]
    partial = [c for c in cameras if wanted and wanted in c.name.casefold()]
    for matches in (exact, partial):
        distinct = {(c.index, c.backend) for c in matches}
        if len(distinct) == 1 or (matches and len({c.name for c in matches}) == 1
                                  and len({c.backend for c in matches}) == len(distinct)):
            return matches[0]
        if len(distinct) > 1:
            listed = ", ".join(f"{c.index}: {c.name} ({c.backend})" for c in matches)
            raise CameraNameError(say("name-ambiguous", name=name, cameras=listed))
    known = ", ".join(f"{c.index}: {c.name}" for c in cameras) or "no cameras were found"
    raise CameraNameError(say("name-unknown", name=name, cameras=known))


# -- virtual cameras ---------------------------------------------------------------------

MODPROBE = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=swapcam"
V4L2LOOPBACK_FIX = ("install and load v4l2loopback (Debian/Ubuntu: sudo apt install "
                    f"v4l2loopback-dkms), then: {MODPROBE}")
OBS_WINDOWS_FIX = ("install OBS Studio 26.1 or newer (https://obsproject.com), start it and "
                   "click 'Start Virtual Camera' once to register 'OBS Virtual Camera', then "
                   "close OBS")
UNITY_FIX = ("install Unity Capture (https://github.com/schellingb/UnityCapture): run its "
             "Install.bat as administrator")
OBS_MACOS_FIX = ("install OBS Studio 30 or newer (https://obsproject.com), start it, click "
                 "'Start Virtual Camera' once and allow its system extension in System "
                 "Settings → Privacy & Security, then close OBS")


def _pyvirtualcam_backends() -> tuple[Any, set[str], str | None]:
    try:
        module: Any = importlib.import_module("pyvirtualcam")
    except ImportError as exc:
        return None, set(), say("pyvirtualcam-missing", error=exc)
    return module, set(module.camera.BACKENDS), None


def _linux_loopback(registered: set[str], missing: str | None) -> VirtualBackend:
    label = "v4l2loopback"
    if missing is not None:
        return VirtualBackend(label, label, False, reason=missing, fix="pip install pyvirtualcam")
    if label not in registered:
        return VirtualBackend(label, label, False,
                              reason=say("no-loopback-backend"),
                              fix="pip install --force-reinstall pyvirtualcam")
    if not (SYS_MODULE / "v4l2loopback").exists():
        return VirtualBackend(label, label, False,
                              reason=say("loopback-not-loaded"),
                              fix=V4L2LOOPBACK_FIX)
    nodes = [c for c in linux_cameras().cameras if c.virtual]
    if not nodes:
        return VirtualBackend(label, label, False,
                              reason=say("loopback-no-devices"),
                              fix=f"sudo modprobe -r v4l2loopback && {MODPROBE}")
    devices = tuple(f"{c.path} ({c.name})" for c in nodes)
    writable = [c for c in nodes if c.path and os.access(c.path, os.W_OK)]
    if not writable:
        return VirtualBackend(label, label, False, devices,
                              reason=say("loopback-not-writable", paths=", ".join(
                                  str(c.path) for c in nodes)),
                              fix="sudo usermod -aG video $USER, then log out and in again")
    return VirtualBackend(label, label, True, devices)


def probe_backend(module: Any, name: str) -> str | None:
    """Open pyvirtualcam's ``name`` backend at 64×64 and close it: None, or its error."""
    try:
        camera = module.Camera(64, 64, 30, backend=name)
    except Exception as exc:  # each backend raises RuntimeError with its own words
        return str(exc).strip() or type(exc).__name__
    camera.close()
    return None


def _probed(module: Any, registered: set[str], missing: str | None, name: str, label: str,
            fix: str) -> VirtualBackend:
    if missing is not None:
        return VirtualBackend(name, label, False, reason=missing, fix="pip install pyvirtualcam")
    if name not in registered:
        return VirtualBackend(name, label, False,
                              reason=say("backend-missing", name=name),
                              fix="pip install --upgrade pyvirtualcam")
    error = probe_backend(module, name)
    if error is None:
        return VirtualBackend(name, label, True, (label,))
    return VirtualBackend(name, label, False, reason=say("backend-failed", error=error),
                          fix=fix)


def virtual_cameras(platform: str | None = None) -> VirtualScan:
    """The virtual-camera backends pyvirtualcam can use on this OS, usable or not."""
    module, registered, missing = _pyvirtualcam_backends()
    family = os_family(platform)
    if family == "linux":
        return VirtualScan((_linux_loopback(registered, missing),))
    if family == "windows":
        return VirtualScan((
            _probed(module, registered, missing, "obs", "OBS Virtual Camera", OBS_WINDOWS_FIX),
            _probed(module, registered, missing, "unitycapture", "Unity Capture", UNITY_FIX),
        ))
    if family == "macos":
        return VirtualScan((_probed(module, registered, missing, "obs", "OBS Virtual Camera",
                                    OBS_MACOS_FIX),))
    return VirtualScan()


def as_json(cameras: CameraScan, virtual: VirtualScan) -> dict[str, Any]:
    """``{"cameras": [{"index", "name", "backend", ...}], "virtual_camera": {...}}``."""
    return {
        "cameras": [asdict(c) for c in cameras.cameras],
        "notes": list(cameras.notes),
        "virtual_camera": {
            "usable": virtual.usable,
            "backends": [asdict(b) | {"devices": list(b.devices)} for b in virtual.backends],
        },
    }
