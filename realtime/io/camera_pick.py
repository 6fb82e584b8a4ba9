"""Which device a camera setting opens, per capture backend.

A camera chosen from the list is saved by its name and device path (``camera_spec``):
``Integrated Camera <\\\\?\\usb#vid_04f2&pid_b6dd&mi_00#6&2d9f1e2&0&0000#{65e8...}\\global>``.
Indices are not stable: on Windows DirectShow and Media Foundation number their devices
differently, and both renumber after a replug or when OBS installs its virtual camera.
So a saved camera is found again in each backend's list by its device path (Windows:
the device interface path without the interface class, which differs per backend;
macOS: AVFoundation's unique ID), and opened only with the index each backend gave it.

A bare index (``--camera 1``, old settings) opens that index with the one backend whose
list it comes from (DirectShow on Windows), never another backend's device of the same
number; where that index is a virtual-camera output (swapcam's own), the first physical
camera is opened instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2

from realtime.io.device_messages import say
from realtime.io.devices import (
    AVFOUNDATION,
    CAPTURE_APIS,
    DSHOW,
    CameraInfo,
    CameraNameError,
    CameraScan,
    default_camera,
    find_camera,
)
from realtime.system import os_family

SPEC = re.compile(r"^(?P<name>.*\S) <(?P<path>[^<>]+)>$")


@dataclass(frozen=True)
class ResolvedCamera:
    """How to open one camera: (device, OpenCV API) pairs to try in order, its name, and
    a note when the setting was replaced (an index naming a virtual-camera output)."""

    targets: tuple[tuple[int, int], ...]
    name: str | None = None
    note: str | None = None


def camera_spec(camera: CameraInfo) -> str:
    """The setting saved for a camera picked from the list: its index on Linux (the index
    is its ``/dev/videoN``), its name and device path on Windows and macOS, or its name
    alone where the enumerator gave no path."""
    if camera.backend not in (DSHOW, "Media Foundation", AVFOUNDATION):
        return str(camera.index)
    return f"{camera.name} <{camera.path}>" if camera.path else camera.name


def parse_spec(spec: str) -> tuple[str, str] | None:
    """(name, device path) of a ``camera_spec`` setting; None for anything else."""
    match = SPEC.match(spec.strip())
    return (match["name"], match["path"]) if match else None


def device_key(path: str) -> str:
    """What identifies one physical device in every backend's list. Windows' device
    interface paths end in ``#{interface class GUID}\\global`` (a DirectShow video
    capture class in DirectShow's list, a camera class in Media Foundation's), so that
    tail is dropped; anything else (macOS unique IDs) is kept, compared case-insensitively."""
    text = path.strip().casefold()
    tail = text.rfind("#{")
    return text[:tail] if tail > 0 else text


def _targets(cameras: list[CameraInfo]) -> tuple[tuple[int, int], ...]:
    # the scan lists the preferred backend first; one entry per backend
    seen: set[str] = set()
    targets = []
    for camera in cameras:
        if camera.backend not in seen:
            seen.add(camera.backend)
            targets.append((camera.index, camera.api))
    return tuple(targets)


def resolve_saved(spec: str, scan: CameraScan) -> ResolvedCamera | None:
    """The listed camera a ``camera_spec`` setting names, in each backend that lists it;
    by device path first, else by name (the device moved to another port). None when the
    setting is not a saved spec; ``CameraNameError`` when no listed camera matches."""
    parsed = parse_spec(spec)
    if parsed is None:
        return None
    name, path = parsed
    key = device_key(path)
    same_device = [c for c in scan.cameras if c.path and device_key(c.path) == key]
    if same_device:
        return ResolvedCamera(_targets(same_device), same_device[0].name)
    found = find_camera(name, scan.cameras)  # raises CameraNameError with the names
    same_name = [c for c in scan.cameras if c.name == found.name]
    if len({c.backend for c in same_name}) != len(same_name):
        raise CameraNameError(say("saved-camera-ambiguous", name=name, path=path))
    return ResolvedCamera(_targets(same_name), found.name)


def resolve_index(index: int, scan: CameraScan, platform: str | None = None
                  ) -> ResolvedCamera | None:
    """How a bare index opens on Windows and macOS; None on other systems (the index is
    the device). Windows: DirectShow's device of that number, plus the same device in Media
    Foundation's list by its path, never Media Foundation's or ANY's device of that
    number. A virtual-camera output is replaced by the first physical camera."""
    family = os_family(platform)
    if family not in ("windows", "macos"):
        return None
    backend = DSHOW if family == "windows" else AVFOUNDATION
    listed = [c for c in scan.cameras if c.backend == backend and c.index == index]
    note = None
    if listed and listed[0].virtual:
        physical = default_camera(scan)
        if physical is None:
            raise CameraNameError(say("only-virtual-camera", index=index,
                                      name=listed[0].name))
        note = (f"camera {index} is {listed[0].name}, a virtual-camera output (it may be "
                f"swapcam's own): opening {physical.name} instead")
        listed = [physical]
    if not listed:  # not listed (no enumerator, or unplugged): its own backend only
        fallback = (CAPTURE_APIS[backend],) if family == "windows" else (
            CAPTURE_APIS[backend], cv2.CAP_ANY)  # ANY is AVFoundation again on macOS
        return ResolvedCamera(tuple((index, api) for api in fallback))
    camera = listed[0]
    same = [c for c in scan.cameras
            if c is camera or (camera.path and c.path and c.backend != camera.backend
                               and device_key(c.path) == device_key(camera.path))]
    return ResolvedCamera(_targets([camera, *[c for c in same if c is not camera]]),
                          camera.name, note)
