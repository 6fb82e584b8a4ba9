"""Frame sources: a camera (OpenCV) and files (video, image, folder of images).

Every source has the same surface (``FrameSource``): ``open()`` (idempotent),
``read() -> Frame | None``, ``close()``, ``describe()`` and ``fps``. ``read()``
never blocks for long: a camera that vanishes mid-stream is reopened in the
background with exponential backoff while ``read()`` keeps returning ``None``
after a short wait, and ``state`` says ``"running"``, ``"reconnecting"`` or
``"failed"`` (files also ``"ended"``) with ``last_error``.

The lowest-level opener is injectable (``capture_factory``) so a camera that
disappears and comes back can be simulated without hardware.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from realtime.io.devices import CameraNameError, find_camera, list_cameras
from realtime.system import long_path_problem, os_family
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


def read_image_file(path: Path) -> np.ndarray | None:
    """An image file's pixels as stored (None when unreadable). The bytes are read by
    Python and decoded by OpenCV: ``cv2.imread`` cannot open a path that is not in the
    ANSI code page on Windows (a user folder named "José" or "王")."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
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


class CameraSource(_RetryingSource):
    """A camera through OpenCV, reconnecting with backoff when it disappears.

    ``device`` is an index (``0``) or a device path (``/dev/video2``). Width,
    height, fps and the MJPG format are requests; ``describe()`` reports what the
    driver actually gave. The capture buffer is set to one frame so a slow reader
    gets the newest frame, not a stale queue.
    """

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = "MJPG",
        apis: Sequence[int] | None = None,
        capture_factory: CaptureFactory = open_capture,
        backoff: Backoff | None = None,
        max_reconnect_attempts: int | None = None,
        failures_before_reconnect: int = 3,
        name: str | None = None,
    ) -> None:
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc: expected 4 characters, got {fourcc!r}")
        self.device, self.name = device, name
        self.width, self.height, self.requested_fps, self.fourcc = width, height, fps, fourcc
        self.apis = tuple(apis) if apis is not None else default_camera_apis()
        super().__init__(backoff)
        self._factory = capture_factory
        self.max_reconnect_attempts = max_reconnect_attempts
        self.failures_before_reconnect = max(1, failures_before_reconnect)
        self._lock = threading.Lock()
        # Held while the driver reads: close() from another thread must not release a
        # capture under a read in progress (drivers can crash).
        self._io_lock = threading.Lock()
        self._closed = threading.Event()
        self._capture: VideoCaptureLike | None = None
        self._api: int | None = None
        self._pending: np.ndarray | None = None
        self._failures = 0
        self._attempt: _OpenAttempt | None = None
        self._index = 0
        self._is_open = False
        self._actual: dict[str, Any] = {}

    # -- state -------------------------------------------------------------------------

    @property
    def fps(self) -> float:
        actual = self._actual.get("fps")
        if isinstance(actual, float) and 0.0 < actual < 1000.0:
            return actual
        return float(self.requested_fps or DEFAULT_FPS)

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) the driver delivers, once open."""
        if "width" in self._actual:
            return int(self._actual["width"]), int(self._actual["height"])
        return None

    def describe(self) -> str:
        what = self._what()
        if not self._actual:
            return f"{what} (not open)"
        got = self._actual
        requested = []
        if self.width and self.height:
            requested.append(f"{self.width}x{self.height}")
        if self.requested_fps:
            requested.append(f"@ {self.requested_fps:g} fps")
        if self.fourcc:
            requested.append(self.fourcc)
        text = (
            f"{what} via {api_name(self._api if self._api is not None else cv2.CAP_ANY)}: "
            f"{got['width']}x{got['height']} @ {got['fps']:g} fps {got['fourcc']}"
        )
        if requested:
            text += f" (requested {' '.join(requested)})"
        if self._state != "running":
            text += f" [{self._state}{': ' + self._last_error if self._last_error else ''}]"
        return text

    def _what(self) -> str:
        name = str(self.device) if isinstance(self.device, int) else repr(self.device)
        return f"camera {name}" + (f" ({self.name})" if self.name else "")

    # -- opening -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the camera (idempotent); raise ``CameraUnavailable`` listing every try."""
        with self._lock:
            if self._is_open and not self._closed.is_set():
                return
            self._closed.clear()
            opened, tried = self._try_open(self.apis)
            if opened is None:
                self._state = "failed"
                self._last_error = "; ".join(tried)
                raise CameraUnavailable(self._unavailable_message(tried))
            self._install(opened)
            self._is_open = True

    def _unavailable_message(self, tried: list[str]) -> str:
        instead = ("play a video file, an image or a folder instead (window: Camera → "
                   "'Video or image file…'; command line: --camera PATH)")
        found = list_cameras().cameras if isinstance(self.device, int) else None
        if found == ():
            # the one line a person needs first; the details follow
            lines = [f"No camera found. To go on without one, {instead}.",
                     f"Tried {self._what()}:"]
        else:
            lines = [f"could not open {self._what()}; tried:"]
        lines += [f"  - {entry}" for entry in tried]
        if found:
            lines.append("cameras found: " + ", ".join(
                f"{c.index}: {c.name} ({c.backend})" for c in found))
        if found != ():
            lines.append("check that the camera is plugged in and not used by another "
                         f"program, or {instead}")
        privacy = CAMERA_PRIVACY.get(os_family())
        if privacy:
            lines.append(privacy)
        return "\n".join(lines)

    def _try_open(self, apis: Sequence[int]) -> tuple[_Opened | None, list[str]]:
        tried: list[str] = []
        for api in apis:
            label = f"{self._what()} via {api_name(api)}"
            try:
                capture = self._factory(self.device, api)
            except Exception as exc:  # drivers raise anything; record it as one try
                tried.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            if not capture.isOpened():
                tried.append(f"{label}: not opened")
                capture.release()
                continue
            self._configure(capture)
            ok, image = capture.read()
            bgr = as_bgr(image) if ok else None
            if bgr is None:
                tried.append(f"{label}: opened but delivered no frame")
                capture.release()
                continue
            return _Opened(capture, api, bgr), tried
        return None, tried

    def _configure(self, capture: VideoCaptureLike) -> None:
        # Order matters on V4L2: the pixel format first, then size, then rate.
        if self.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter.fourcc(*self.fourcc)))
        if self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, float(self.width))
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, float(self.height))
        if self.requested_fps:
            capture.set(cv2.CAP_PROP_FPS, float(self.requested_fps))
        # One buffered frame: a reader that falls behind sees the newest frame.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1.0)

    def _install(self, opened: _Opened) -> None:
        capture = opened.capture
        self._capture, self._api, self._pending = capture, opened.api, opened.first_image
        height, width = opened.first_image.shape[:2]
        self._actual = {
            "width": width,
            "height": height,
            "fps": float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            "fourcc": fourcc_to_str(capture.get(cv2.CAP_PROP_FOURCC)),
            "buffersize": capture.get(cv2.CAP_PROP_BUFFERSIZE),
        }
        self._failures = 0
        self._running_again()

    # -- reading -----------------------------------------------------------------------

    def read(self) -> Frame | None:
        """The next frame, or ``None`` after at most a short wait (lost, closed)."""
        if self._closed.is_set():
            return None
        if not self._is_open:
            raise SourceError(f"{self._what()}: call open() before read()")
        if self._state == "running":
            return self._read_running()
        if self._state == "reconnecting":
            self._poll_reconnect()
            if self._state == "running":
                return self._read_running()
        self._closed.wait(self._idle_wait())
        return None

    def _read_running(self) -> Frame | None:
        image = self._pending
        self._pending = None
        if image is None:
            with self._io_lock:
                capture = self._capture
                if capture is None or self._closed.is_set():
                    return None
                try:
                    ok, raw = capture.read()
                except cv2.error as exc:
                    ok, raw = False, None
                    self._last_error = f"read raised {exc}"
            image = as_bgr(raw) if ok else None
        if image is None:
            self._failures += 1
            self._last_error = f"read failed ({self._failures} in a row)"
            if self._failures >= self.failures_before_reconnect:
                self._lose()
            return None
        self._failures = 0
        frame = Frame(self._index, time.monotonic_ns(), image)
        self._index += 1
        return frame

    def _lose(self) -> None:
        log.warning("%s lost (%s); reconnecting", self._what(), self._last_error)
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
            self._start_retrying()

    def _poll_reconnect(self) -> None:
        attempt = self._attempt
        if attempt is not None:
            if not attempt.done.is_set():
                return
            self._attempt = None
            if attempt.result is not None:
                with self._lock:
                    if self._closed.is_set():
                        attempt.result.capture.release()
                        return
                    self._install(attempt.result)
                log.info("%s reconnected: %s", self._what(), self.describe())
                return
            self._retry_failed()
            self._last_error = "reopen failed: " + "; ".join(attempt.tried)
            limit = self.max_reconnect_attempts
            if limit is not None and self._attempts >= limit:
                self._state = "failed"
                log.error("%s failed after %d reopen attempts", self._what(), self._attempts)
            return
        if self._retry_due():
            # Try the backend that worked first, then the others.
            apis = list(self.apis)
            if self._api in apis:
                apis.remove(self._api)
                apis.insert(0, self._api)
            self._attempt = _OpenAttempt(lambda: self._try_open(apis))

    def _idle_wait(self) -> float:
        if self._state == "reconnecting" and self._attempt is None:
            return max(0.0, min(IDLE_WAIT_S, self._next_attempt - time.monotonic()))
        return IDLE_WAIT_S

    def close(self) -> None:
        """Release the camera (idempotent, safe from any thread)."""
        self._closed.set()
        idle = self._io_lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            with self._lock:
                if self._attempt is not None:
                    self._attempt.abandon()
                    self._attempt = None
                if self._capture is not None:
                    if idle:
                        self._capture.release()
                    else:  # a read is stuck in the driver: let garbage collection release
                        log.warning("%s: read still in progress; release deferred", self._what())
                    self._capture = None
                self._pending = None
                if self._is_open:
                    self._state = "closed"
                self._is_open = False
        finally:
            if idle:
                self._io_lock.release()


SourceKind = Literal["video", "image", "folder"]


class FileSource(_RetryingSource):
    """A video file, a single image, or a folder of images, paced like a camera.

    Frames are released at the file's fps (or ``fps`` when given) on monotonic
    deadlines: ``read()`` sleeps until the next frame is due. A reader slower than
    the rate gets every frame, late; the schedule then restarts from now instead
    of bursting to catch up. With ``loop`` the source starts over at the end.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None = None,
        loop: bool = True,
        capture_factory: CaptureFactory = open_capture,
        backoff: Backoff | None = None,
    ) -> None:
        if fps is not None and not fps > 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.path = Path(path).expanduser()
        super().__init__(backoff)
        self.requested_fps, self.loop = fps, loop
        self._factory = capture_factory
        self._closed = threading.Event()
        self._io_lock = threading.Lock()  # see CameraSource
        self._opened = False
        self._kind: SourceKind | None = None
        self._capture: VideoCaptureLike | None = None
        self._image: np.ndarray | None = None
        self._files: list[Path] = []
        self._position = 0
        self._file_fps: float | None = None
        self._index = 0
        self._loops = 0
        self._due: float | None = None
        self._size: tuple[int, int] | None = None

    @property
    def loops(self) -> int:
        """How many times the source started over."""
        return self._loops

    @property
    def kind(self) -> SourceKind | None:
        return self._kind

    @property
    def size(self) -> tuple[int, int] | None:
        return self._size

    @property
    def fps(self) -> float:
        if self.requested_fps:
            return float(self.requested_fps)
        if self._file_fps and 0.0 < self._file_fps < 1000.0:
            return self._file_fps
        return DEFAULT_FPS

    def describe(self) -> str:
        size = f"{self._size[0]}x{self._size[1]}" if self._size else "?"
        count = f", {len(self._files)} images" if self._kind == "folder" else ""
        text = f"{self._kind or 'file'} {str(self.path)!r}{count}: {size} @ {self.fps:g} fps"
        if self.loop:
            text += ", looping"
        if self._state not in ("running", "closed"):
            text += f" [{self._state}{': ' + self._last_error if self._last_error else ''}]"
        return text

    def open(self) -> None:
        """Open the file(s) (idempotent); ``SourceError`` when nothing can be read."""
        if self._opened and not self._closed.is_set():
            return
        self._closed.clear()
        path = self.path
        if not path.exists():
            raise SourceError(f"{str(path)!r}: no such file or folder")
        first: np.ndarray | None
        if path.is_dir():
            self._kind = "folder"
            self._files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not self._files:
                raise SourceError(
                    f"{str(path)!r}: expected a folder with images "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}), found none"
                )
            self._position = 0
            first = self._next_folder_image()
            self._position = 0  # deliver the first image again on the first read()
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self._kind = "image"
            first = as_bgr(read_image_file(path))
            if first is None:
                raise SourceError(f"{str(path)!r}: not a readable image")
            self._image = first
        else:
            self._kind = "video"
            first = self._open_video()
            if first is None:
                raise SourceError(f"{str(path)!r}: expected a readable video, {self._last_error}")
            self._image = first  # handed out by the first read()
        if first is None:
            raise SourceError(f"{str(path)!r}: none of the images could be read")
        self._size = (int(first.shape[1]), int(first.shape[0]))
        self._state, self._due, self._opened = "running", None, True

    def _open_video(self) -> np.ndarray | None:
        """(Re)open the video at its start; its first frame, or None."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        try:
            capture = self._factory(str(self.path), cv2.CAP_ANY)
        except Exception as exc:
            self._last_error = f"open raised {type(exc).__name__}: {exc}"
            return None
        if not capture.isOpened():
            capture.release()
            self._last_error = "could not be opened"
            return None
        ok, raw = capture.read()
        image = as_bgr(raw) if ok else None
        if image is None:
            capture.release()
            self._last_error = "opened but has no frames"
            return None
        self._file_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._capture = capture
        return image

    def _next_folder_image(self) -> np.ndarray | None:
        for _ in range(len(self._files)):
            if self._position >= len(self._files):
                if not self.loop:
                    return None
                self._position = 0
                self._loops += 1
            path = self._files[self._position]
            self._position += 1
            image = as_bgr(read_image_file(path))
            if image is not None:
                return image
            log.warning("skipping unreadable image %s", path)
        self._last_error = "none of the images could be read"
        return None

    def _next_video_image(self) -> np.ndarray | None:
        if self._state == "reconnecting":
            if not self._retry_due():
                return None
            image = self._open_video()
            if image is None:
                self._retry_failed()
                return None
            self._running_again()
            log.info("%s reopened", self.path)
            return image
        if self._image is not None:  # the frame read while opening
            image, self._image = self._image, None
            return image
        capture = self._capture
        ok, raw = capture.read() if capture is not None else (False, None)
        image = as_bgr(raw) if ok else None
        if image is not None:
            return image
        # End of file (or a read error: OpenCV does not tell them apart).
        if not self.loop:
            self._state = "ended"
            return None
        image = self._open_video()
        if image is None:
            log.warning("%s could not be reopened (%s); retrying", self.path, self._last_error)
            self._start_retrying()
            return None
        self._loops += 1
        return image

    def _next_image(self) -> np.ndarray | None:
        if self._kind == "image":
            if self._image is None:
                return None
            if self._index > 0 and not self.loop:
                self._state = "ended"
                return None
            return self._image.copy()  # consumers may draw on frames
        if self._kind == "folder":
            image = self._next_folder_image()
            if image is None and not self.loop:
                self._state = "ended"
            return image
        return self._next_video_image()

    def read(self) -> Frame | None:
        """The next frame when it is due; ``None`` when ended, closed or failing."""
        if self._closed.is_set():
            return None
        if not self._opened:
            raise SourceError(f"{str(self.path)!r}: call open() before read()")
        if self._state in ("ended", "failed"):
            if not self._closed.is_set():
                self._closed.wait(IDLE_WAIT_S)
            return None
        interval = 1.0 / self.fps
        now = time.monotonic()
        due = now if self._due is None else self._due
        if due > now and self._closed.wait(due - now):
            return None
        with self._io_lock:
            image = None if self._closed.is_set() else self._next_image()
        if image is None:
            self._closed.wait(IDLE_WAIT_S)
            return None
        captured_ns = time.monotonic_ns()
        # Next deadline on the fixed grid; when more than a frame late, restart from now
        # rather than releasing a burst.
        after = captured_ns / 1e9
        self._due = due + interval if after <= due + interval else after + interval
        frame = Frame(self._index, captured_ns, image)
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the file (idempotent, safe from any thread)."""
        self._closed.set()
        idle = self._io_lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            if self._capture is not None and idle:
                self._capture.release()
            self._capture = None
            self._opened = False
            self._state = "closed"
        finally:
            if idle:
                self._io_lock.release()


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
