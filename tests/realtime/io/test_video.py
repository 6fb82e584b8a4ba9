"""Video in/out: size, rate, frame count and audio survive; Ctrl-C never leaves a corrupt file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.io.video import (
    VideoError,
    VideoWriter,
    fps_fraction,
    probe_streams,
    probe_video,
    read_frames,
)
from tests.realtime.media import mp4_with_audio


def _count_frames(path: Path) -> int:
    return sum(1 for _ in read_frames(path))


def _moving_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        frame = np.full((height, width, 3), 40, dtype=np.uint8)
        cv2.circle(frame, (10 + i * 4, height // 2), 12, (0, 200, 255), -1)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def video_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 25 fps 160×120 MP4 with a 1 s sine audio track."""
    return mp4_with_audio(tmp_path_factory.mktemp("video"), _moving_frames(24, 160, 120), 25.0,
                          frequency=440, seconds=1.0)


def test_fps_fraction_keeps_ntsc_rates_exact() -> None:
    assert fps_fraction(30000 / 1001) == "30000/1001"
    assert fps_fraction(25.0) == "25/1"


def test_probe_reads_size_rate_count_and_audio(video_with_audio: Path) -> None:
    info = probe_video(video_with_audio)
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(25.0)
    assert _count_frames(video_with_audio) == 24
    streams = probe_streams(video_with_audio)
    assert streams.video and streams.audio and streams.audio_codec == "aac"
    assert (streams.width, streams.height) == (160, 120)


def test_writer_keeps_frames_rate_size_and_audio(video_with_audio: Path, tmp_path: Path) -> None:
    info = probe_video(video_with_audio)
    out = tmp_path / "out.mp4"
    frames = list(read_frames(video_with_audio))
    with VideoWriter(out, info.width, info.height, info.fps, audio_from=video_with_audio) as w:
        for frame in frames:
            w.write(255 - frame)
    assert out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"], "temp files left behind"
    got = probe_video(out)
    assert (got.width, got.height) == (160, 120)
    assert got.fps == pytest.approx(25.0)
    written = list(read_frames(out))
    assert len(written) == 24
    # the content is ours (inverted), not the input's: compare against the inverse
    diff = np.abs(written[5].astype(int) - (255 - frames[5]).astype(int)).mean()
    assert diff < 6
    streams = probe_streams(out)
    assert streams.audio and streams.audio_codec == "aac"


def test_writer_without_audio_source_and_odd_size(tmp_path: Path) -> None:
    out = tmp_path / "odd.mkv"
    with VideoWriter(out, 81, 61, 30000 / 1001) as writer:
        for frame in _moving_frames(5, 81, 61):
            writer.write(frame)
    info = probe_video(out)
    assert (info.width, info.height) == (81, 61)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert _count_frames(out) == 5
    assert not probe_streams(out).audio


def test_interrupt_keeps_a_valid_shorter_file(video_with_audio: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(
        out, 160, 120, 25.0, audio_from=video_with_audio
    ) as writer:
        for i, frame in enumerate(read_frames(video_with_audio)):
            if i == 10:
                raise KeyboardInterrupt
            writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.mp4"]
    assert _count_frames(out) == 10
    assert probe_video(out).fps == pytest.approx(25.0)


def test_interrupt_before_any_frame_and_errors_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(out, 64, 48, 25.0):
        raise KeyboardInterrupt
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, 64, 48, 25.0) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_paths_raise(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"expected a video file"):
        VideoWriter(tmp_path / "x.gif", 64, 48, 25.0)
    with pytest.raises(VideoError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "x.mp4", 64, 48, 25.0)
    with pytest.raises(VideoError, match=r"expected uint8 \(48, 64, 3\)"), VideoWriter(
        tmp_path / "x.mp4", 64, 48, 25.0
    ) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    with pytest.raises(VideoError, match=r"notes\.mp4"):
        probe_video(not_video)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


CHILD = """
import sys, time
import numpy as np
from pathlib import Path
from realtime.io.video import VideoWriter
out = Path(sys.argv[1])
try:
    with VideoWriter(out, 64, 48, 25.0) as writer:
        for i in range(100000):
            writer.write(np.full((48, 64, 3), i % 256, np.uint8))
            if i == 5:
                print("ready", flush=True)
            time.sleep(0.005)
except KeyboardInterrupt:
    print("frames", writer.frames_written, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="process-group SIGINT is POSIX")
def test_terminal_ctrl_c_to_the_whole_group_keeps_a_valid_file(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals every process of the group: ffmpeg must survive it."""
    out = tmp_path / "live.mp4"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[3], start_new_session=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    os.killpg(child.pid, signal.SIGINT)
    rest, _ = child.communicate(timeout=30)
    written = int(rest.split()[-1])
    assert written >= 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.mp4"]
    assert _count_frames(out) == written
