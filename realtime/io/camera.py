"""A camera through OpenCV: open by index, device path or name over the OS's capture
backends, and reopen in the background with backoff when it vanishes mid-stream
(``read()`` keeps returning ``None`` after a short wait meanwhile)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from realtime.io.devices import list_cameras
from realtime.io.source_base import (
    CAMERA_PRIVACY,
    CLOSE_WAIT_S,
    DEFAULT_FPS,
    IDLE_WAIT_S,
    Backoff,
    CameraUnavailable,
    CaptureFactory,
    SourceError,
    VideoCaptureLike,
    _OpenAttempt,
    _Opened,
    _RetryingSource,
    api_name,
    as_bgr,
    default_camera_apis,
    fourcc_to_str,
    open_capture,
)
from realtime.system import os_family
from realtime.types import Frame

log = logging.getLogger(__name__)


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
        targets: Sequence[tuple[int | str, int]] | None = None,
    ) -> None:
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc: expected 4 characters, got {fourcc!r}")
        self.device, self.name = device, name
        self.width, self.height, self.requested_fps, self.fourcc = width, height, fps, fourcc
        # (device, API) pairs to try: by default ``device`` with each API; a camera found
        # by its device path has its own index in each backend's list
        self.targets: tuple[tuple[int | str, int], ...] = (
            tuple(targets) if targets else tuple(
                (device, api) for api in (apis if apis is not None else default_camera_apis())))
        self.apis = tuple(api for _device, api in self.targets)
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
        self._device_open: int | str = device
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
        what = self._what(self._device_open)
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

    def _what(self, device: int | str | None = None) -> str:
        device = self.device if device is None else device
        name = str(device) if isinstance(device, int) else repr(device)
        return f"camera {name}" + (f" ({self.name})" if self.name else "")

    # -- opening -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the camera (idempotent); raise ``CameraUnavailable`` listing every try."""
        with self._lock:
            if self._is_open and not self._closed.is_set():
                return
            self._closed.clear()
            opened, tried = self._try_open(self.targets)
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

    def _try_open(self, targets: Sequence[tuple[int | str, int]]
                  ) -> tuple[_Opened | None, list[str]]:
        tried: list[str] = []
        for device, api in targets:
            label = f"{self._what(device)} via {api_name(api)}"
            try:
                capture = self._factory(device, api)
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
            self._device_open = device
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
            # Try the (device, backend) that worked first, then the others.
            targets = list(self.targets)
            worked = (self._device_open, self._api)
            if worked in targets:
                targets.remove(worked)
                targets.insert(0, worked)
            self._attempt = _OpenAttempt(lambda: self._try_open(targets))

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
