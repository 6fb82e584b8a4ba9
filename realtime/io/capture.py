"""Open a frame source from what a user typed: a camera index, a ``/dev/video*``
device, a camera's name, or a video, image or folder path.

Every source has the same surface (``FrameSource``, in ``source_base``): ``open()``
(idempotent), ``read() -> Frame | None``, ``close()``, ``describe()`` and ``fps``, and
``state`` (``"running"``, ``"reconnecting"``, ``"failed"``, files also ``"ended"``) with
``last_error``. The camera lives in ``camera``, the file sources in ``file_source``; this
module names them all for callers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from realtime.io.camera import CameraSource
from realtime.io.camera_pick import camera_spec, parse_spec, resolve_index, resolve_saved
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
from realtime.system import long_path_problem, os_family

log = logging.getLogger(__name__)

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
        return _camera_by_index(int(text), width=width, height=height, fps=fps,
                                capture_factory=capture_factory)
    if text.startswith("/dev/video"):
        return CameraSource(
            text, width=width, height=height, fps=fps, capture_factory=capture_factory
        )
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except OSError:  # a name too long for this file system
        exists = False
    if not exists and parse_spec(text) is not None:  # saved by name and device path
        return _saved_camera(text, width=width, height=height, fps=fps,
                             capture_factory=capture_factory)
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
        if camera.path and os_family() in ("windows", "macos"):  # each backend's number
            return _saved_camera(camera_spec(camera), width=width, height=height, fps=fps,
                                 capture_factory=capture_factory)
        # only the backend that listed it: the same index can be another device elsewhere
        return CameraSource(camera.index, width=width, height=height, fps=fps,
                            apis=(camera.api,),
                            capture_factory=capture_factory, name=camera.name)
    return FileSource(path, fps=fps, loop=loop, capture_factory=capture_factory)


def _camera_by_index(index: int, *, width: int | None, height: int | None,
                     fps: float | None, capture_factory: CaptureFactory) -> CameraSource:
    """Windows and macOS: the index in the preferred backend's list only (another backend's
    device of the same number is another camera), and never a virtual-camera output."""
    try:
        resolved = (resolve_index(index, list_cameras())
                    if os_family() in ("windows", "macos") else None)
    except CameraNameError as exc:
        raise SourceError(f"input {index}: {exc}") from exc
    if resolved is None:  # Linux: the index is /dev/videoN
        return CameraSource(index, width=width, height=height, fps=fps,
                            capture_factory=capture_factory)
    if resolved.note:
        log.warning("%s", resolved.note)
    first = resolved.targets[0][0]
    return CameraSource(first, width=width, height=height, fps=fps, name=resolved.name,
                        targets=resolved.targets, capture_factory=capture_factory)


def _saved_camera(spec: str, *, width: int | None, height: int | None, fps: float | None,
                  capture_factory: CaptureFactory) -> CameraSource:
    try:
        resolved = resolve_saved(spec, list_cameras())
    except CameraNameError as exc:
        raise SourceError(f"input {spec!r}: {exc}") from exc
    if resolved is None:
        raise SourceError(f"input {spec!r}: expected a camera saved as 'NAME <PATH>'")
    return CameraSource(resolved.targets[0][0], width=width, height=height, fps=fps,
                        name=resolved.name, targets=resolved.targets,
                        capture_factory=capture_factory)
