"""Files as a frame source: a video, a single image or a folder of images, paced
like a camera and looping when asked; a damaged or vanished file is retried with
backoff like a camera."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from realtime.io.source_base import (
    CLOSE_WAIT_S,
    DEFAULT_FPS,
    IDLE_WAIT_S,
    IMAGE_SUFFIXES,
    Backoff,
    CaptureFactory,
    SourceError,
    VideoCaptureLike,
    _RetryingSource,
    as_bgr,
    open_capture,
    read_image_file,
)
from realtime.types import Frame

log = logging.getLogger(__name__)


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
