"""Where processed frames go: a virtual camera, a video file, or nowhere.

Every sink has the ``FrameSink`` surface. ``send()`` never blocks: it drops the
frame into a one-slot latest-wins box that the sink's own thread empties (an
unsent frame that is replaced counts as a drop). A sink that fails records the
error (``error``) and keeps accepting frames, so the pipeline keeps running.
``stop()`` is idempotent and returns within a second even when the output is
stuck (the stuck thread is abandoned as a daemon and the failure logged).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from realtime.system import helper_process_kwargs, os_family
from realtime.types import check_image

log = logging.getLogger(__name__)

AI_LABEL = "AI-modified"
STOP_TIMEOUT_S = 0.8  # stop() must return within a second, with margin
OPEN_TIMEOUT_S = 5.0
REOPEN_BACKOFF_S = (0.5, 5.0)  # a virtual camera that failed: first retry, longest wait


class FrameSink(Protocol):
    """An output of the live pipeline."""

    def start(self) -> None: ...

    def send(self, image: np.ndarray, captured_ns: int) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...


class SinkError(RuntimeError):
    """A sink could not start or stopped working."""


class VirtualCameraUnavailable(SinkError):
    """No virtual camera device; the message says what to do on this OS."""


class RecorderError(SinkError):
    """The recorder's encoder could not start or died (disk full, killed...)."""


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink. ``last_latency_ms``: frame capture → accepted by the output."""

    frames_sent: int
    drops: int
    last_latency_ms: float | None
    error: str | None
    repeats: int = 0


def virtual_camera_help(system: str | None = None) -> str:
    """What to do so a virtual camera exists, for ``system`` (``platform.system()``'s
    spelling; default: this OS, from ``sys.platform``)."""
    if system is None:
        system = {"linux": "Linux", "windows": "Windows", "macos": "Darwin"}.get(
            os_family(), sys.platform)
    if system == "Linux":
        return (
            "Linux: install and load the v4l2loopback kernel module "
            "(Debian/Ubuntu: sudo apt install v4l2loopback-dkms), then run\n"
            "  sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=swapcam\n"
            "(exclusive_caps=1 lets Chrome, Zoom and other apps see the device)."
        )
    if system in ("Windows", "Darwin"):
        name = "Windows" if system == "Windows" else "macOS"
        return (
            f"{name}: install OBS Studio (https://obsproject.com), start it and click "
            "'Start Virtual Camera' once (this registers the OBS Virtual Camera), then "
            "close OBS; swapcam will send to 'OBS Virtual Camera'."
        )
    return f"{system}: no virtual camera backend is known for this system."


def virtual_camera_advice() -> str:
    """Each of this OS's virtual-camera backends that cannot be used, why and the fix
    (``realtime.io.devices``); the general help when that check itself fails."""
    from realtime.io.devices import virtual_cameras

    try:
        backends = virtual_cameras().backends
    except Exception as exc:  # a diagnosis must not hide the error it explains
        log.warning("virtual-camera check failed: %s", exc)
        return virtual_camera_help()
    lines = [f"{b.label}: {b.reason}\n  fix: {b.fix}" for b in backends if not b.usable]
    return "\n".join(lines) if lines else virtual_camera_help()


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width``×``height`` keeping its aspect, black bars around."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


def draw_label(image: np.ndarray, text: str = AI_LABEL) -> None:
    """Draw a small ``text`` badge in the bottom-left corner, in place."""
    h = image.shape[0]
    scale = max(0.35, h / 1080 * 0.8)
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(4 * scale))
    x0, y1 = pad, h - pad
    y0 = y1 - th - base - 2 * pad
    cv2.rectangle(image, (x0, max(0, y0)), (x0 + tw + 2 * pad, y1), (0, 0, 0), -1)
    cv2.putText(
        image, text, (x0 + pad, y1 - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
        (255, 255, 255), thickness, cv2.LINE_AA,
    )


class _Slot:
    """One-slot latest-wins box; ``put`` reports whether it replaced an unread item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[np.ndarray, int] | None = None
        self._woken = False

    def put(self, item: tuple[np.ndarray, int]) -> bool:
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None) -> tuple[np.ndarray, int] | None:
        with self._cond:
            if self._item is None and timeout and not self._woken:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._woken = False
            return item

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()


class _ThreadedSink:
    """Thread, slot, counters and stop logic shared by the real sinks."""

    name = "sink"

    def __init__(self, width: int, height: int, fps: float, label: str | None) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"output size: expected at least 2x2, got {width}x{height}")
        # 4:2:0 formats (I420, yuv420p) need even sizes: round down, letterbox fills.
        width, height = width - width % 2, height - height % 2
        if not fps > 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.width, self.height, self.fps, self.label = width, height, float(fps), label
        self._slot = _Slot()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._sent = 0
        self._drops = 0
        self._repeats = 0
        self._latency_ms: float | None = None
        self._stopped = False

    # -- public surface ----------------------------------------------------------------

    @property
    def error(self) -> BaseException | None:
        """The failure that stopped the output, if any (the pipeline shows it)."""
        return self._error

    def stats(self) -> SinkStats:
        with self._lock:
            error = f"{type(self._error).__name__}: {self._error}" if self._error else None
            return SinkStats(self._sent, self._drops, self._latency_ms, error, self._repeats)

    def start(self) -> None:
        """Open the output on the sink's thread; raise the open error here."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(OPEN_TIMEOUT_S):
            self._stop.set()
            self._fail(SinkError(f"{self.describe()}: did not open within {OPEN_TIMEOUT_S} s"))
        if self._error is not None:
            raise self._error

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        """Hand over a BGR uint8 frame (kept by reference: do not modify it afterwards)."""
        check_image(f"{self.name}.send image", image)
        if self._thread is None:
            raise SinkError(f"{self.describe()}: send() before start()")
        if self._stopped or self._error is not None:
            with self._lock:
                self._drops += 1
            return
        if self._slot.put((image, captured_ns)):
            with self._lock:
                self._drops += 1

    def stop(self) -> None:
        """Stop and release the output (idempotent); returns within about a second."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._slot.wake()
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        thread.join(max(0.0, deadline - time.monotonic() - 0.2))
        if thread.is_alive():
            self._unstick()
            thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s: output thread stuck; abandoned", self.describe())
        if self._slot.take(None) is not None:
            with self._lock:
                self._drops += 1  # accepted but never sent

    def describe(self) -> str:
        raise NotImplementedError

    # -- for subclasses ------------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    def _unstick(self) -> None:
        """Called by stop() when the thread is still busy: break a blocked write."""

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        log.error("%s: %s", self.describe(), exc)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        out = letterbox(image, self.width, self.height)
        if self.label:
            if out is image:
                out = image.copy()  # never draw on the caller's frame
            draw_label(out, self.label)
        return out

    def _accepted(self, captured_ns: int, repeat: bool = False) -> None:
        latency = (time.monotonic_ns() - captured_ns) / 1e6
        with self._lock:
            self._sent += 1
            if repeat:
                self._repeats += 1
            else:
                self._latency_ms = latency

    def _run(self) -> None:
        try:
            self._open()
        except BaseException as exc:
            self._fail(exc)
            self._ready.set()
            return
        self._ready.set()
        try:
            if not self._stop.is_set():
                self._loop()
        except BaseException as exc:
            if self._stop.is_set():
                # stop() broke a stuck write on purpose; not a failure to report
                log.debug("%s: ended while stopping: %s", self.describe(), exc)
            else:
                self._fail(exc)
        finally:
            try:
                self._close()
            except Exception as exc:
                log.warning("%s: close failed: %s", self.describe(), exc)


class VirtualCameraSink(_ThreadedSink):
    """Frames to a virtual camera through pyvirtualcam, on the sink's own thread.

    Output size and rate are fixed; frames of another size are letterboxed. Frames
    are sent as they arrive but never faster than ``fps``. The frame format is BGR,
    or I420 (converted here) when the backend's native format is I420, which saves
    the backend a conversion. ``backend`` and ``device`` pass to ``pyvirtualcam.Camera``.
    """

    name = "virtual-camera"

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        backend: str | None = None,
        device: str | None = None,
        label: str | None = AI_LABEL,
    ) -> None:
        super().__init__(width, height, fps, label)
        self.backend, self.device = backend, device
        self._camera: Any = None
        self._i420 = False
        self._opened_device: str | None = None
        self._opened_backend: str | None = None
        self.reopens = 0  # times the device was reopened after a failed send
        self.problem: str | None = None  # why frames are not going out, while reopening

    @property
    def pixel_format(self) -> str | None:
        """"I420" or "BGR" once open."""
        if self._camera is None and self._opened_device is None:
            return None
        return "I420" if self._i420 else "BGR"

    def describe(self) -> str:
        target = self._opened_device or self.device or "first free device"
        backend = self._opened_backend or self.backend or "auto"
        fmt = f" {self.pixel_format}" if self.pixel_format else ""
        return f"virtual camera {target} ({backend}) {self.width}x{self.height} @ {self.fps:g}{fmt}"

    def _open(self) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise VirtualCameraUnavailable(
                f"pyvirtualcam is not installed ({exc}); pip install pyvirtualcam"
            ) from exc
        if self.backend is not None and self.backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none"
            raise VirtualCameraUnavailable(
                f"pyvirtualcam has no backend {self.backend!r} here (available: {known}).\n"
                + virtual_camera_help()
            )
        camera = self._open_camera(pyvirtualcam, pyvirtualcam.PixelFormat.BGR)
        if camera.native_fmt == pyvirtualcam.PixelFormat.I420:
            # The device wants I420: reopen taking I420 and convert with OpenCV here.
            camera.close()
            camera = self._open_camera(pyvirtualcam, pyvirtualcam.PixelFormat.I420)
            self._i420 = True
        self._camera = camera
        self._opened_device, self._opened_backend = str(camera.device), str(camera.backend)
        log.info("%s opened", self.describe())

    def _open_camera(self, pyvirtualcam: Any, fmt: Any) -> Any:
        try:
            return pyvirtualcam.Camera(
                self.width, self.height, self.fps, fmt=fmt, backend=self.backend,
                device=self.device,
            )
        except Exception as exc:
            raise VirtualCameraUnavailable(
                f"no virtual camera could be opened ({str(exc).strip()}).\n"
                + virtual_camera_advice()
            ) from exc

    def _close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()

    def _convert(self, image: np.ndarray) -> np.ndarray:
        out = self._prepare(image)
        if self._i420:
            return cv2.cvtColor(out, cv2.COLOR_BGR2YUV_I420)
        return out

    def _loop(self) -> None:
        interval = 1.0 / self.fps
        last_send: float | None = None
        while not self._stop.is_set():
            item = self._slot.take(0.1)
            if item is None:
                continue
            if last_send is not None:
                wait = last_send + interval - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    with self._lock:
                        self._drops += 1
                    break
                newer = self._slot.take(None)  # a frame that arrived while waiting wins
                if newer is not None:
                    item = newer
                    with self._lock:
                        self._drops += 1
            image, captured_ns = item
            frame = self._convert(image)
            last_send = time.monotonic()
            try:
                self._camera.send(frame)
            except Exception as exc:
                if self._stop.is_set():
                    raise
                self._reopen(exc)
                last_send = None
                continue
            self._accepted(captured_ns)

    def _reopen(self, cause: Exception) -> None:
        """The device refused a frame (its reader or driver went away): say why
        (``problem``), then reopen it with a backoff until it takes frames again, so a
        stream outlives it. Frames that arrive meanwhile are dropped (counted)."""
        # Not ``error`` (that one means stopped for good: the window detaches such a
        # sink), but shown while it lasts.
        self.problem = f"{self.describe()}: {cause}; reopening"
        log.warning("%s", self.problem)
        with contextlib.suppress(Exception):  # the broken handle may not close cleanly
            self._close()
        delay = REOPEN_BACKOFF_S[0]
        while not self._stop.wait(delay):
            try:
                self._open()
            except Exception as exc:
                log.debug("%s: reopening failed: %s", self.describe(), exc)
                delay = min(delay * 2.0, REOPEN_BACKOFF_S[1])
                continue
            with self._lock:
                self.problem = None
                self.reopens += 1
            log.info("%s: sending again", self.describe())
            return


class RecorderSink(_ThreadedSink):
    """Frames to a Matroska file through the ffmpeg binary of imageio-ffmpeg.

    The file stays playable if the process is killed: Matroska needs no trailer,
    ffmpeg flushes every packet, clusters close every second and every second
    starts with a keyframe, so a kill loses at most about the last second.
    The timeline is real time at a constant ``fps``: on each tick the newest frame
    is written, repeated when none came (counted in ``repeats``). When ffmpeg dies
    (full disk, killed) the error lands in ``error`` and frames are dropped.
    """

    name = "recorder"

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        *,
        codec: str = "libx264",
        label: str | None = None,
        ffmpeg: str | None = None,
    ) -> None:
        super().__init__(width, height, fps, label)
        self.path = Path(path)
        self.codec = codec
        self._ffmpeg = ffmpeg
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_tail = b""

    @property
    def process_id(self) -> int | None:
        """The ffmpeg child's pid while it runs."""
        return self._process.pid if self._process is not None else None

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        return f"recorder {str(self.path)!r} {size} @ {self.fps:g} ({self.codec})"

    def command(self) -> list[str]:
        """The ffmpeg command line."""
        exe = self._ffmpeg
        if exe is None:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        rate = f"{self.fps:g}"
        gop = str(max(1, round(self.fps)))
        if self.codec == "libx264":
            codec = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                     "-pix_fmt", "yuv420p", "-g", gop]
        else:
            codec = ["-c:v", self.codec, "-q:v", "3", "-pix_fmt", "yuvj420p"]
        return [
            exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{self.width}x{self.height}",
            "-r", rate, "-i", "pipe:0",
            *codec,
            "-f", "matroska", "-flush_packets", "1", "-cluster_time_limit", "1000",
            str(self.path),
        ]

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise RecorderError(f"{str(self.path)!r}: folder does not exist")
        try:
            self._process = subprocess.Popen(  # type: ignore[call-overload]
                self.command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, **helper_process_kwargs(),
            )
        except OSError as exc:
            raise RecorderError(f"could not start ffmpeg: {exc}") from exc
        stderr = self._process.stderr
        if stderr is not None:
            threading.Thread(target=self._drain, args=(stderr,), daemon=True,
                             name="recorder-stderr").start()
        log.info("%s started", self.describe())

    def _drain(self, stream: Any) -> None:
        # ffmpeg's last words say why it died (e.g. "No space left on device").
        for line in iter(stream.readline, b""):
            self._stderr_tail = (self._stderr_tail + line)[-2000:]

    def _died(self, cause: BaseException | None) -> RecorderError:
        process = self._process
        code = process.poll() if process is not None else None
        if process is not None and code is None:
            try:
                code = process.wait(0.5)
            except subprocess.TimeoutExpired:
                code = None
        words = self._stderr_tail.decode(errors="replace").strip() or str(cause or "")
        return RecorderError(f"ffmpeg stopped writing {str(self.path)!r} (exit {code}): {words}")

    def _write(self, data: bytes | memoryview) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise RecorderError("ffmpeg is not running")
        try:
            process.stdin.write(data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._died(exc) from exc

    def _loop(self) -> None:
        interval = 1.0 / self.fps
        due: float | None = None
        data: bytes | None = None
        last_ns = 0
        while not self._stop.is_set():
            if due is None:
                item = self._slot.take(0.1)
                if item is None:
                    continue
                due = time.monotonic()
            else:
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                item = self._slot.take(None)
            repeat = item is None
            if item is not None:
                image, last_ns = item
                data = self._prepare(image).tobytes()
            if data is None:
                continue
            self._write(data)
            self._accepted(last_ns, repeat=repeat)
            due += interval
            if time.monotonic() > due + interval:  # writer fell behind: don't burst
                due = time.monotonic()

    def _unstick(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()  # a blocked pipe write then fails at once

    def _close(self) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # ffmpeg finishes the file (cues, duration)
        try:
            process.wait(max(0.1, STOP_TIMEOUT_S - 0.3))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode not in (0, None) and self._error is None and not self._stop.is_set():
            self._fail(self._died(None))


class NullSink:
    """Counts frames and drops nothing: for benchmarks and headless runs."""

    def __init__(self) -> None:
        self.frames = 0
        self._latency_ms: float | None = None
        self._started = False

    @property
    def error(self) -> BaseException | None:
        return None

    def start(self) -> None:
        self._started = True

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        self.frames += 1
        self._latency_ms = (time.monotonic_ns() - captured_ns) / 1e6

    def stop(self) -> None:
        self._started = False

    def stats(self) -> SinkStats:
        return SinkStats(self.frames, 0, self._latency_ms, None)

    def describe(self) -> str:
        return f"null sink ({self.frames} frames)"
