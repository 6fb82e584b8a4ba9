"""Every problem ``swapcam devices`` (and a camera chosen by name) can report, by id: one
table, so that each has a troubleshooting entry (docs/troubleshooting.md,
``(devices-<id>)=``; a test keeps the two in step). The fixes stay beside the checks in
``realtime.io.devices``.

Texts are ``str.format`` templates; ``say(id, **fields)`` fills one in.
"""

from __future__ import annotations

DEVICE_MESSAGES: dict[str, str] = {
    # -- cameras ------------------------------------------------------------------------
    "no-cameras": ("none found (play a video or image file instead: swapcam live --camera "
                   "PATH, or in the window Camera → 'Video or image file…')"),
    "no-v4l2": "{path} does not exist (no V4L2 drivers loaded)",
    "no-enumerator": "camera names need the cv2-enumerate-cameras package: {hint}",
    "list-failed": "{backend}: could not list cameras ({kind}: {error})",
    "os-unsupported": "listing cameras is not supported on {platform}",
    "name-ambiguous": ("camera name {name!r} matches more than one camera ({cameras}); give "
                       "its index instead"),
    "name-unknown": "no camera is called {name!r} (cameras: {cameras})",
    "saved-camera-ambiguous": ("camera {name!r} is not connected at {path} and more than "
                               "one camera has that name: choose it again in the camera list"),
    "only-virtual-camera": ("camera {index} is {name}, a virtual-camera output (it may be "
                            "swapcam's own), and no other camera was found"),
    # -- virtual cameras ------------------------------------------------------------------
    "no-virtual-backend": "no backend is known for this system",
    "pyvirtualcam-missing": "pyvirtualcam is not installed ({error})",
    "no-loopback-backend": "this pyvirtualcam build has no v4l2loopback backend",
    "loopback-not-loaded": "the v4l2loopback kernel module is not loaded",
    "loopback-no-devices": "v4l2loopback is loaded but has no devices",
    "loopback-not-writable": "no write permission on {paths}",
    "backend-missing": "this pyvirtualcam build has no {name!r} backend",
    # pyvirtualcam's own words when OBS / Unity Capture cannot be opened
    "backend-failed": "{error}",
}


def say(key: str, **fields: object) -> str:
    """The message ``key`` with ``fields`` filled in (KeyError: not in the table)."""
    return DEVICE_MESSAGES[key].format(**fields)
