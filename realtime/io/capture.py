"""Open a frame source from what a user typed: a camera index, a ``/dev/video*``
device, a camera's name, or a video, image or folder path.

Every source has the same surface (``FrameSource``, in ``source_base``): ``open()``
(idempotent), ``read() -> Frame | None``, ``close()``, ``describe()`` and ``fps``, and
``state`` (``"running"``, ``"reconnecting"``, ``"failed"``, files also ``"ended"``) with
``last_error``. The camera lives in ``camera``, the file sources in ``file_source``; this
module names them all for callers.
"""

from __future__ import annotations

from pathlib import Path

from realtime.io.camera import CameraSource
from realtime.io.devices import CameraNameError, find_camera, list_cameras
from realtime.io.file_source import FileSource, SourceKind
from realtime.io.source_base import (
    IMAGE_SUFFIXES,
    Backoff,
    CameraUnavailable,
    CaptureFactory,
    FrameSource,
    SourceError,
    SourceState,
    VideoCaptureLike,
    api_name,
    as_bgr,
    default_camera_apis,
    open_capture,
    read_image_file,
)
from realtime.system import long_path_problem

__all__ = [
    "IMAGE_SUFFIXES", "Backoff", "CameraSource", "CameraUnavailable", "CaptureFactory",
    "FileSource", "FrameSource", "SourceError", "SourceKind", "SourceState",
    "VideoCaptureLike", "api_name", "as_bgr", "camera_fps", "default_camera_apis",
    "open_capture", "open_source", "read_image_file",
]


def camera_fps(spec: str, fps: float | None) -> float | None:
    """``fps`` when ``spec`` names a camera (index, device or camera name), None for a file
    or folder (it plays at its own rate; a requested fps is a camera setting)."""
    text = spec.strip()
    if text.isdigit() or text.startswith("/dev/"):
        return fps
    try:
        return None if Path(text).expanduser().exists() else fps
    except OSError:  # a name too long for a path: a camera's name
        return fps


def open_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    loop: bool = True,
    capture_factory: CaptureFactory = open_capture,
) -> CameraSource | FileSource:
    """A source for ``spec`` (not yet opened): a digit → camera index, ``/dev/video*``
    → camera device, an existing path → a video/image/folder, else a camera's name
    (``realtime.io.devices``: exact, or the one name containing it)."""
    text = spec.strip()
    if text.isdigit():
        return CameraSource(
            int(text), width=width, height=height, fps=fps, capture_factory=capture_factory
        )
    if text.startswith("/dev/video"):
        return CameraSource(
            text, width=width, height=height, fps=fps, capture_factory=capture_factory
        )
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except OSError:  # a name too long for this file system
        exists = False
    if not exists:
        try:
            camera = find_camera(text, list_cameras().cameras)
        except CameraNameError as exc:
            too_long = long_path_problem(path)
            raise SourceError(
                f"input {spec!r}: no such file or folder, and {exc}; expected a camera "
                "index (0, 1, ...), a camera's name (swapcam devices lists them), a "
                "/dev/video* device, a video file, an image or a folder of images"
                + (f" ({too_long})" if too_long else "")
            ) from exc
        # only the backend that listed it: the same index can be another device elsewhere
        return CameraSource(camera.index, width=width, height=height, fps=fps,
                            apis=(camera.api,),
                            capture_factory=capture_factory, name=camera.name)
    return FileSource(path, fps=fps, loop=loop, capture_factory=capture_factory)
