"""What every frame source shares: the ``FrameSource`` surface, typed errors, the
OpenCV opener and its backend names, pixel-format conversion, and the retry clock
(``Backoff``, ``_RetryingSource``) that both the camera and the file sources run on.

The lowest-level opener is injectable (``capture_factory``) so a camera that
disappears and comes back can be simulated without hardware.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from realtime.system import os_family
from realtime.types import Frame

log = logging.getLogger(__name__)

SourceState = Literal["running", "reconnecting", "failed", "ended", "closed"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_FPS = 30.0
# read() waits at most this long while nothing can be delivered, so a caller's loop
# neither spins nor stalls its own stop request.
IDLE_WAIT_S = 0.05
# close() waits this long for a read in progress before leaving the release to the GC;
# a healthy driver returns a frame within one frame interval.
CLOSE_WAIT_S = 0.5


# Where each OS lets a person block camera access (a blocked camera opens as "not opened")
CAMERA_PRIVACY = {
    "windows": ("Windows: Settings → Privacy & security → Camera: turn on 'Camera access' "
                "and 'Let desktop apps access your camera'"),
    "macos": ("macOS: System Settings → Privacy & Security → Camera: allow the program you "
              "started swapcam from (Terminal, or swapcam)"),
}


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class CameraUnavailable(SourceError):
    """No camera could be opened; the message lists every (device, backend) tried."""


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def read(self) -> tuple[bool, Any]: ...

    def set(self, prop: int, value: float, /) -> bool: ...

    def get(self, prop: int, /) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str, int], VideoCaptureLike]


class FrameSource(Protocol):
    """What the pipeline's capture thread reads from."""

    @property
    def fps(self) -> float: ...

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


def open_capture(source: int | str, api: int) -> VideoCaptureLike:
    """The real opener: ``cv2.VideoCapture(source, api)``."""
    if isinstance(source, int):
        return cv2.VideoCapture(source, api)
    return cv2.VideoCapture(source, api)  # a device path or a file


_API_NAMES = {cv2.CAP_DSHOW: "DSHOW", cv2.CAP_MSMF: "MSMF",
              cv2.CAP_AVFOUNDATION: "AVFOUNDATION", cv2.CAP_V4L2: "V4L2"}


def api_name(api: int) -> str:
    """OpenCV's name of a capture backend (``V4L2``, ``DSHOW``...)."""
    if api == cv2.CAP_ANY:
        return "ANY"
    try:
        name = str(cv2.videoio_registry.getBackendName(api))
    except cv2.error:
        name = ""
    if not name or name.startswith("UnknownVideoAPI"):  # a backend this build lacks
        return _API_NAMES.get(api, str(api))
    return name


_SYSTEMS = {"Windows": "win32", "Darwin": "darwin", "Linux": "linux"}


def default_camera_apis(system: str | None = None) -> tuple[int, ...]:
    """Capture backends to try for a camera, best first, for this OS (``system``:
    ``platform.system()``'s or ``sys.platform``'s spelling; default ``sys.platform``).

    Windows: DirectShow first: it opens in well under a second, honours the MJPG
    request and the one-frame buffer, and its device order is the one ``devices``
    lists; Media Foundation (slow to open on many drivers, buffer size ignored) is the
    fallback. macOS: AVFoundation (no buffer-size control; it delivers the newest
    frame anyway). Linux: V4L2.
    """
    family = os_family(_SYSTEMS.get(system, system) if system else None)
    if family == "windows":
        return (cv2.CAP_DSHOW, cv2.CAP_MSMF, cv2.CAP_ANY)
    if family == "macos":
        return (cv2.CAP_AVFOUNDATION, cv2.CAP_ANY)
    return (cv2.CAP_V4L2, cv2.CAP_ANY)


def read_image_file(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    """An image file's pixels as stored (None when unreadable); ``flags`` as
    ``cv2.imdecode``'s (``IMREAD_COLOR``: BGR, turned by its EXIF orientation). The bytes
    are read by Python and decoded by OpenCV: ``cv2.imread`` cannot open a path that is
    not in the ANSI code page on Windows (a user folder named "José" or "王")."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, flags)
    return image if isinstance(image, np.ndarray) else None


def fourcc_to_str(code: float) -> str:
    value = int(code)
    if value <= 0:
        return "?"
    chars = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return chars if chars.isprintable() else hex(value)


def as_bgr(image: Any) -> np.ndarray | None:
    """Convert what a driver hands back (grey, BGRA, 16-bit) to BGR uint8, or None."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return None


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): initial × factor**n, capped."""

    initial_s: float = 0.25
    maximum_s: float = 4.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum_s, self.initial_s * self.factor ** max(attempt, 0)))


@dataclass
class _Opened:
    capture: VideoCaptureLike
    api: int
    first_image: np.ndarray


class _OpenAttempt:
    """One background reopen, so ``read()`` never waits on a slow driver."""

    def __init__(self, opener: Callable[[], tuple[_Opened | None, list[str]]]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._abandoned = False
        self.result: _Opened | None = None
        self.tried: list[str] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-reopen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            result, tried = self._opener()
        except Exception as exc:  # the opener is user-injectable: report, don't die silently
            result, tried = None, [f"reopen raised {type(exc).__name__}: {exc}"]
        with self._lock:
            if self._abandoned and result is not None:
                result.capture.release()
                result = None
            self.result, self.tried = result, tried
        self.done.set()

    def abandon(self) -> None:
        """The source closed: release whatever this attempt opens, now or later."""
        with self._lock:
            self._abandoned = True
            if self.result is not None:
                self.result.capture.release()
                self.result = None


class _RetryingSource:
    """What both sources share: ``state``, ``last_error``, and when to retry an input
    that was lost (attempt n starts ``backoff.delay(n)`` after the loss or after the
    previous attempt failed)."""

    def __init__(self, backoff: Backoff | None) -> None:
        self.backoff = backoff or Backoff()
        self._state: SourceState = "closed"
        self._last_error: str | None = None
        self._attempts = 0
        self._next_attempt = 0.0

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def reconnect_attempts(self) -> int:
        """Failed reopen attempts since the input was lost (0 while running)."""
        return self._attempts

    def _start_retrying(self) -> None:
        """The input is lost: state ``reconnecting``, first attempt after the first delay."""
        self._state, self._attempts = "reconnecting", 0
        self._next_attempt = time.monotonic() + self.backoff.delay(0)

    def _retry_failed(self) -> None:
        self._attempts += 1
        self._next_attempt = time.monotonic() + self.backoff.delay(self._attempts)

    def _retry_due(self) -> bool:
        return time.monotonic() >= self._next_attempt

    def _running_again(self) -> None:
        self._state, self._attempts = "running", 0
