"""Test media written on the fly: MJPEG AVIs and H.264 MP4s with an AAC sine track."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from realtime.io.video import ffmpeg_exe


def write_mjpeg(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """BGR frames (all one size) to an MJPEG AVI that OpenCV reads back everywhere."""
    writer: cv2.VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps,
                                         (width, height))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write MJPEG to {path}")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"{path}: expected at least one frame, got none")
    return path


def mp4_with_audio(folder: Path, frames: Iterable[np.ndarray], fps: float, *,
                   frequency: int = 440, seconds: float = 1.0) -> Path:
    """``folder/clip.mp4``: the frames as H.264 plus a ``seconds``-long sine as AAC."""
    silent = write_mjpeg(folder / "silent.avi", frames, fps)
    out = folder / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(silent),
         "-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}",
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(out)],
        check=True,
    )  # fmt: skip
    return out
