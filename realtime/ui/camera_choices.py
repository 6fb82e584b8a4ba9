"""The camera combo's entries: each camera by the name its driver gives (``realtime.io.
devices``); the setting is its index on Linux, its name and device path on Windows and
macOS (``realtime.io.camera_pick``: indices differ per backend and shift); a label for a
setting that no camera matches. Virtual-camera outputs are never offered."""

from __future__ import annotations

from pathlib import Path

from realtime.io.camera_pick import camera_spec, parse_spec, resolve_index
from realtime.io.devices import CameraNameError, find_camera, list_cameras, preferred_cameras
from realtime.system import os_family

NOT_FOUND = "no camera found"


def camera_choices() -> list[tuple[str, str]]:
    """(spec, label) per camera, e.g. ``("0", "HD Webcam C525 (0)")`` on Linux and
    ``("Integrated Camera <PATH>", "Integrated Camera (0)")`` on Windows and macOS (PATH:
    the device's path or unique ID). Listing opens no camera (cheap, GUI-safe). Where
    names cannot be listed (the enumerator is missing on Windows or macOS) the first
    three indices are offered by number."""
    scan = list_cameras()
    cameras = preferred_cameras(scan)
    if cameras:
        return [(camera_spec(c), f"{c.name} ({c.index})") for c in cameras]
    if scan.notes and os_family() in ("windows", "macos"):
        return [(str(i), f"Camera {i}") for i in range(3)]
    return []


def is_camera_spec(spec: str) -> bool:
    """A camera (index, device, or a name: anything that is not an existing file)."""
    text = spec.strip()
    if text.isdigit() or text.startswith("/dev/"):
        return True
    try:
        return not Path(text).expanduser().exists()
    except OSError:  # a name too long for a path
        return True


def unlisted_label(spec: str) -> str:
    """The label of a setting that is not among ``camera_choices()``: a camera index or
    name that is not connected now, or a file."""
    text = spec.strip()
    if text.isdigit() and os_family() in ("windows", "macos"):
        try:  # an index saved before cameras were saved by name, or --camera 1
            resolved = resolve_index(int(text), list_cameras())
        except CameraNameError:
            resolved = None
        if resolved is not None and resolved.name:
            return f"{resolved.name} ({resolved.targets[0][0]})"
    if text.isdigit() or text.startswith("/dev/"):
        return f"Camera {text} ({NOT_FOUND})"
    saved = parse_spec(text)
    if saved is not None:  # a camera saved by name and device path, not connected now
        return f"{saved[0]} ({NOT_FOUND})"
    path = Path(text).expanduser()
    if path.exists():
        return f"File: {path.name}"
    try:  # a camera by name (live --camera NAME): connected, or not now
        camera = find_camera(text, list_cameras().cameras)
    except CameraNameError:
        return f"{text} ({NOT_FOUND})"
    return f"{camera.name} ({camera.index})"
