"""Video files in and out: OpenCV decodes, imageio-ffmpeg's ffmpeg binary encodes.

``VideoWriter`` pipes raw BGR frames to ffmpeg (H.264, same size and frame rate),
then muxes the audio of the original file into the result with stream copy (AAC
re-encode only when the container refuses the original codec). Output is written to
a hidden temporary file next to the target and renamed at the end, so the target is
either a complete file or absent. ffmpeg runs in its own process group: a Ctrl-C in
the terminal reaches only Python, which then closes ffmpeg's input cleanly and keeps
the shorter, valid video (``finish``) or deletes everything (``abort``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from realtime.system import helper_process_kwargs

log = logging.getLogger(__name__)

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".m4v")
DEFAULT_FPS = 30.0


class VideoError(RuntimeError):
    """A video cannot be read or written (the message names the file)."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    frame_count: int  # as reported by the container; may be an estimate


@dataclass(frozen=True)
class StreamInfo:
    """What ffmpeg says a file holds (parsed from ``ffmpeg -i``)."""

    video: bool
    audio: bool
    width: int | None
    height: int | None
    fps: float | None
    audio_codec: str | None


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def probe_streams(path: Path) -> StreamInfo:
    """Parse ``ffmpeg -i PATH``'s stream lines (ffmpeg exits 1 without an output: fine)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    text = result.stderr
    video_line = next((ln for ln in text.splitlines() if "Stream #" in ln and "Video:" in ln), "")
    audio_line = next((ln for ln in text.splitlines() if "Stream #" in ln and "Audio:" in ln), "")
    size = re.search(r"(?<![0-9x])(\d{2,5})x(\d{2,5})(?![0-9x])", video_line)
    fps = re.search(r"([\d.]+) fps", video_line)
    codec = re.search(r"Audio: (\w+)", audio_line)
    return StreamInfo(
        video=bool(video_line),
        audio=bool(audio_line),
        width=int(size.group(1)) if size else None,
        height=int(size.group(2)) if size else None,
        fps=float(fps.group(1)) if fps else None,
        audio_codec=codec.group(1) if codec else None,
    )


def probe_video(path: Path) -> VideoInfo:
    """Size, frame rate and frame count of a video file (OpenCV)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"video {path}: cannot open (not a video, or unsupported codec)")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if width <= 0 or height <= 0:
        raise VideoError(f"video {path}: expected a video stream, got size {width}x{height}")
    if not math.isfinite(fps) or fps <= 0:
        log.warning("video %s reports no frame rate; assuming %.0f fps", path, DEFAULT_FPS)
        fps = DEFAULT_FPS
    return VideoInfo(path=path, width=width, height=height, fps=fps, frame_count=max(count, 0))


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of ``path`` as BGR uint8, in order."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"video {path}: cannot open (not a video, or unsupported codec)")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def fps_fraction(fps: float) -> str:
    """ffmpeg rate string; 29.97… becomes 30000/1001 rather than a rounded float."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def _new_group_kwargs() -> dict[str, object]:
    # Keep ffmpeg out of the terminal's process group so Ctrl-C does not kill it
    # mid-write; we end it ourselves by closing its input. No console window on Windows.
    return helper_process_kwargs()


class VideoWriter:
    """Write BGR frames to ``output`` (H.264) with the audio of ``audio_from``.

    Use as a context manager: a normal exit or a ``KeyboardInterrupt`` after at least
    one frame finishes a valid file; any other error deletes it.
    """

    def __init__(
        self,
        output: Path,
        width: int,
        height: int,
        fps: float,
        *,
        audio_from: Path | None = None,
        crf: int = 18,
    ) -> None:
        self.output = Path(output)
        if self.output.suffix.lower() not in VIDEO_SUFFIXES:
            raise VideoError(
                f"output {self.output}: expected a video file ({', '.join(VIDEO_SUFFIXES)}), "
                f"got {self.output.suffix or 'no extension'}"
            )
        if not self.output.parent.is_dir():
            raise VideoError(f"output {self.output}: folder {self.output.parent} does not exist")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.audio_from = audio_from
        self.frames_written = 0
        suffix = self.output.suffix
        self._video_tmp = self.output.with_name(f".{self.output.stem}.video{suffix}")
        self._final_tmp = self.output.with_name(f".{self.output.stem}.partial{suffix}")
        # ffmpeg's messages go to a file (a pipe could fill up and stall it); closed
        # in finish/abort.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        # H.264 4:2:0 needs even sizes; 4:4:4 keeps odd sizes exact.
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{self.width}x{self.height}",
            "-framerate", fps_fraction(self.fps), "-i", "-",
            "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
            "-pix_fmt", pix_fmt, str(self._video_tmp),
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            **_new_group_kwargs(),  # type: ignore[call-overload]
        )

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or (
            issubclass(exc_type, KeyboardInterrupt) and self.frames_written > 0
        ):
            try:
                self.finish()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()

    def _ffmpeg_error(self, what: str) -> VideoError:
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip()[-2000:]
        return VideoError(f"{what} {self.output}: ffmpeg failed: {tail or 'no message'}")

    def write(self, frame: np.ndarray) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise VideoError(f"video {self.output}: writer is closed")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise VideoError(
                f"frame {self.frames_written}: expected uint8 {(self.height, self.width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait()
            raise self._ffmpeg_error("writing") from exc
        self.frames_written += 1

    def _close_encoder(self) -> int:
        proc, self._proc = self._proc, None
        if proc is None:
            return 0
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass  # a dead ffmpeg: its exit status tells
        return proc.wait()

    def finish(self) -> Path:
        """Finalise: end the encode, mux the audio, rename onto ``output``."""
        status = self._close_encoder()
        if status != 0:
            raise self._ffmpeg_error("encoding")
        if self.frames_written == 0:
            raise VideoError(f"video {self.output}: no frames were written")
        self._mux()
        os.replace(self._final_tmp, self.output)
        self._video_tmp.unlink(missing_ok=True)
        self._log.close()
        log.info("wrote %d frames to %s", self.frames_written, self.output)
        return self.output

    def _mux(self) -> None:
        base = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-i", str(self._video_tmp)]  # fmt: skip
        if self.audio_from is None:
            attempts = [[*base, "-map", "0:v:0", "-c", "copy", str(self._final_tmp)]]
        else:
            with_audio = [*base, "-i", str(self.audio_from), "-map", "0:v:0", "-map", "1:a?",
                          "-c:v", "copy", "-shortest"]  # fmt: skip
            attempts = [
                [*with_audio, "-c:a", "copy", str(self._final_tmp)],
                # the container refused the original audio codec: re-encode it
                [*with_audio, "-c:a", "aac", str(self._final_tmp)],
            ]
        errors = []
        for command in attempts:
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, **_new_group_kwargs()
            )  # type: ignore[call-overload]
            if result.returncode == 0:
                return
            errors.append(result.stderr.strip()[-1000:])
            self._final_tmp.unlink(missing_ok=True)
        raise VideoError(f"muxing {self.output}: ffmpeg failed: {' | '.join(errors)}")

    def abort(self) -> None:
        """Stop ffmpeg and delete every file this writer made."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
        for path in (self._video_tmp, self._final_tmp):
            path.unlink(missing_ok=True)
        self._log.close()
