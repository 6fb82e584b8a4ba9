"""Sinks through real code paths.

- pyvirtualcam's own ``Camera`` with a backend class of ours registered through
  ``pyvirtualcam.register_backend`` (shape checks, formats, our pacing).
- pyvirtualcam's native v4l2loopback backend, unmodified, in a subprocess with an
  ``LD_PRELOAD`` shim (``v4l2_shim.c``, built here with gcc) that plays the
  loopback device and stores the I420 frames in a file that we read back.
- The recorder's real ffmpeg, killed with SIGKILL mid-recording.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from realtime.io.sinks import (
    FrameSink,
    NullSink,
    RecorderSink,
    SinkError,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    letterbox,
    virtual_camera_help,
)
from realtime.types import ValueTypeError

ROOT = Path(__file__).resolve().parents[3]
COLOUR = (40, 80, 200)  # BGR
MODPROBE = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=swapcam"


def bt601_yuv(bgr: tuple[int, int, int]) -> tuple[float, float, float]:
    """Limited-range BT.601 Y, U, V of a BGR colour (what I420 cameras carry)."""
    b, g, r = bgr
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def solid(width: int, height: int, bgr: tuple[int, int, int] = COLOUR) -> np.ndarray:
    return np.full((height, width, 3), bgr, np.uint8)


def i420_planes(data: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    y = data[: width * height].reshape(height, width)
    u = data[width * height : width * height * 5 // 4].reshape(height // 2, width // 2)
    v = data[width * height * 5 // 4 :].reshape(height // 2, width // 2)
    return y, u, v


# -- registered pyvirtualcam backends ------------------------------------------------------


class Recorded:
    """What a registered backend saw."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.opened: list[dict[str, Any]] = []
        self.closed = 0


@pytest.fixture
def backend() -> Iterator[Callable[..., tuple[str, Recorded]]]:
    """Register a backend class of ours with pyvirtualcam; unregister afterwards."""
    names: list[str] = []
    releases: list[threading.Event] = []

    def make(native: str = "24BG", stuck: bool = False) -> tuple[str, Recorded]:
        record = Recorded()
        release = threading.Event()
        releases.append(release)

        class Backend:
            def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                         device: str | None, **kw: Any) -> None:
                record.opened.append(dict(width=width, height=height, fps=fps, fourcc=fourcc))
                self._device = device or "test-cam"

            def send(self, frame: np.ndarray) -> None:
                if stuck:
                    release.wait(30)
                record.frames.append(frame.copy())
                record.times.append(time.monotonic())

            def close(self) -> None:
                record.closed += 1

            def device(self) -> str:
                return self._device

            def native_fourcc(self) -> int:
                return encode_fourcc(native)

        name = f"swapcam-test-{len(names)}-{id(record)}"
        pyvirtualcam.register_backend(name, Backend)
        names.append(name)
        return name, record

    yield make
    for release in releases:
        release.set()
    for name in names:
        pyvirtualcam.camera.BACKENDS.pop(name, None)


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_letterbox_keeps_aspect_with_black_bars() -> None:
    image = solid(320, 240)
    out = letterbox(image, 640, 360)
    assert out.shape == (360, 640, 3)
    assert not out[:, :80].any() and not out[:, 560:].any()
    assert (out[:, 80:560] == COLOUR).all()
    tall = letterbox(solid(100, 400), 200, 200)
    assert not tall[:, :75].any() and (tall[:, 76:124] == COLOUR).all()
    assert letterbox(image, 320, 240) is image


def test_bgr_backend_gets_letterboxed_frames(backend: Callable[..., tuple[str, Recorded]]) -> None:
    name, record = backend(native="24BG")
    sink = VirtualCameraSink(640, 360, 30.0, backend=name, label=None)
    sink.start()
    assert sink.pixel_format == "BGR"
    assert record.opened[0]["fourcc"] == encode_fourcc("24BG")
    sink.send(solid(320, 240), time.monotonic_ns())
    assert wait_for(lambda: len(record.frames) == 1)
    sink.stop()
    frame = record.frames[0].reshape(360, 640, 3)  # pyvirtualcam hands backends 1-D arrays
    assert not frame[:, :80].any() and not frame[:, 560:].any()
    assert (frame[:, 80:560] == COLOUR).all()
    stats = sink.stats()
    assert stats.frames_sent == 1 and stats.drops == 0 and stats.error is None
    assert stats.last_latency_ms is not None and 0 <= stats.last_latency_ms < 1000
    assert record.closed == 1
    assert name in sink.describe()


def test_i420_backend_gets_bt601_colours_and_label(
    backend: Callable[..., tuple[str, Recorded]],
) -> None:
    name, record = backend(native="I420")
    sink = VirtualCameraSink(320, 240, 30.0, backend=name)  # default label on
    sink.start()
    assert sink.pixel_format == "I420"
    # Probed in BGR, then reopened taking I420 because that is the native format.
    assert [o["fourcc"] for o in record.opened] == [encode_fourcc("24BG"), encode_fourcc("I420")]
    sink.send(solid(320, 240), time.monotonic_ns())
    assert wait_for(lambda: len(record.frames) == 1)
    sink.stop()
    data = record.frames[0]
    assert data.size == 320 * 240 * 3 // 2
    y, u, v = i420_planes(data, 320, 240)
    ey, eu, ev = bt601_yuv(COLOUR)
    assert abs(float(np.median(y)) - ey) <= 2
    assert abs(float(np.median(u)) - eu) <= 2 and abs(float(np.median(v)) - ev) <= 2
    # The "AI-modified" badge: bottom-left corner differs, the rest is untouched.
    changed = np.abs(y.astype(int) - round(ey)) > 30
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 500, changed.sum()
    assert rows.min() >= 240 - 40 and cols.max() < 120, (rows.min(), cols.max())


def test_pacing_latest_wins_and_counts(backend: Callable[..., tuple[str, Recorded]]) -> None:
    name, record = backend()
    sink = VirtualCameraSink(64, 48, 20.0, backend=name, label=None)
    sink.start()
    offered = 0
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        grey = offered % 250
        sink.send(solid(64, 48, (grey, grey, grey)), time.monotonic_ns())
        offered += 1
        time.sleep(0.004)
    last_grey = (offered - 1) % 250
    assert wait_for(lambda: int(record.frames[-1][0]) == last_grey, 1.0)
    sink.stop()
    stats = sink.stats()
    gaps = np.diff(record.times)
    assert gaps.min() >= 0.05 - 0.004, gaps  # never faster than 20 fps
    assert 10 <= stats.frames_sent <= 15, stats
    assert stats.frames_sent == len(record.frames)
    assert stats.frames_sent + stats.drops == offered
    sent = [int(f[0]) for f in record.frames]
    assert sent == sorted(sent)  # only ever newer frames


def test_stop_returns_within_a_second_when_backend_is_stuck(
    backend: Callable[..., tuple[str, Recorded]],
) -> None:
    name, _ = backend(stuck=True)
    sink = VirtualCameraSink(64, 48, 30.0, backend=name, label=None)
    sink.start()
    for _ in range(3):
        sink.send(solid(64, 48), time.monotonic_ns())
        time.sleep(0.05)
    start = time.monotonic()
    sink.stop()
    assert time.monotonic() - start < 1.0
    sink.stop()  # idempotent
    drops = sink.stats().drops
    sink.send(solid(64, 48), time.monotonic_ns())  # after stop: counted, not raised
    assert sink.stats().drops == drops + 1


def test_unknown_backend_and_send_before_start() -> None:
    sink = VirtualCameraSink(64, 48, 30.0, backend="no-such-backend")
    with pytest.raises(SinkError, match="before start"):
        sink.send(solid(64, 48), 0)
    with pytest.raises(ValueTypeError, match="uint8"):
        sink.send(np.zeros((48, 64), np.float32), 0)
    with pytest.raises(VirtualCameraUnavailable, match="no-such-backend") as info:
        sink.start()
    assert sink.error is info.value
    sink.send(solid(64, 48), 0)
    assert sink.stats().drops == 1
    sink.stop()


def test_help_per_operating_system() -> None:
    assert MODPROBE in virtual_camera_help("Linux")
    for system in ("Windows", "Darwin"):
        text = virtual_camera_help(system)
        assert "OBS" in text and "Start Virtual Camera" in text


def test_output_size_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 2x2"):
        VirtualCameraSink(1, 480, 30.0)
    odd = RecorderSink("x.mkv", 641, 361, 30.0)  # 4:2:0 needs even sizes
    assert (odd.width, odd.height) == (640, 360)
    with pytest.raises(ValueError, match="fps"):
        RecorderSink("x.mkv", 640, 480, 0.0)


def test_null_sink_counts(tmp_path: Path) -> None:
    sinks: list[FrameSink] = [  # the protocol, checked by mypy
        NullSink(), VirtualCameraSink(64, 48, 30.0), RecorderSink(tmp_path / "x.mkv", 64, 48, 30)
    ]
    assert [s.describe() for s in sinks] == [
        "null sink (0 frames)",
        "virtual camera first free device (auto) 64x48 @ 30",
        f"recorder {str(tmp_path / 'x.mkv')!r} 64x48 @ 30 (libx264)",
    ]
    sink = NullSink()
    sink.start()
    for _ in range(5):
        sink.send(solid(8, 8), time.monotonic_ns())
    sink.stop()
    sink.stop()
    assert sink.stats().frames_sent == 5 and sink.frames == 5


# -- pyvirtualcam's native v4l2loopback backend under an LD_PRELOAD shim --------------------


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.platform != "linux":
        pytest.skip("the v4l2 shim is Linux-only")
    if "v4l2loopback" not in pyvirtualcam.camera.BACKENDS:
        pytest.skip("this pyvirtualcam has no native v4l2loopback backend")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (needed to build the LD_PRELOAD shim)")
    out = tmp_path_factory.mktemp("shim") / "v4l2_shim.so"
    source = Path(__file__).with_name("v4l2_shim.c")
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out),
                    str(source), "-ldl"], check=True, capture_output=True, timeout=60)
    return out


def run_with_shim(shim: Path, device: str, output: Path, script: str) -> str:
    env = dict(os.environ, LD_PRELOAD=str(shim), SHIM_V4L2_DEVICE=device,
               SHIM_V4L2_OUTPUT=str(output), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


COLOURS = ((40, 80, 200), (200, 40, 80), (90, 200, 30))


def test_native_v4l2_backend_writes_i420_frames(shim: Path, tmp_path: Path) -> None:
    output = tmp_path / "video4.yuv"
    stdout = run_with_shim(shim, "/dev/video4", output, f"""
        import time
        import numpy as np
        from realtime.io.sinks import VirtualCameraSink
        sink = VirtualCameraSink(320, 240, 30.0, label=None)  # backend chosen by pyvirtualcam
        sink.start()
        print(sink.describe())
        for i, colour in enumerate({COLOURS!r}):
            sink.send(np.full((240, 320, 3), colour, np.uint8), time.monotonic_ns())
            deadline = time.monotonic() + 5
            while sink.stats().frames_sent < i + 1 and time.monotonic() < deadline:
                time.sleep(0.005)
        sink.stop()
        print(sink.stats())
    """)
    # pyvirtualcam scanned /dev/video0..3 (absent under the shim) and took video4.
    assert "/dev/video4 (v4l2loopback)" in stdout and "I420" in stdout
    width, height, fourcc, sizeimage, frames = (tmp_path / "video4.yuv.fmt").read_text().split()
    assert (int(width), int(height), fourcc) == (320, 240, "YU12")
    assert int(sizeimage) == 320 * 240 * 3 // 2 and int(frames) == len(COLOURS)
    data = np.fromfile(output, np.uint8)
    assert data.size == len(COLOURS) * int(sizeimage)
    for frame, colour in zip(data.reshape(len(COLOURS), -1), COLOURS, strict=True):
        y, u, v = i420_planes(frame, 320, 240)
        expected = bt601_yuv(colour)
        got = (float(y.mean()), float(u.mean()), float(v.mean()))
        assert np.allclose(got, expected, atol=2.0), (colour, got, expected)


def test_no_loopback_device_says_what_to_do(shim: Path, tmp_path: Path) -> None:
    stdout = run_with_shim(shim, "none", tmp_path / "unused.yuv", """
        import platform
        from realtime.io.sinks import VirtualCameraSink, VirtualCameraUnavailable
        sink = VirtualCameraSink(320, 240, 30.0, backend="v4l2loopback")
        try:
            sink.start()
        except VirtualCameraUnavailable as exc:
            print("UNAVAILABLE:", exc)
        sink.stop()
    """)
    assert "UNAVAILABLE:" in stdout and "No v4l2 loopback device found" in stdout
    assert MODPROBE in stdout


# -- recorder ------------------------------------------------------------------------------


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def test_recorder_writes_real_time_constant_rate(tmp_path: Path) -> None:
    path = tmp_path / "out.mkv"
    sink = RecorderSink(path, 160, 120, 20.0)
    sink.start()
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        sink.send(solid(320, 240), time.monotonic_ns())  # letterbox: same aspect, scaled
        time.sleep(0.1)  # 10 fps in, 20 fps out: half are repeats
    sink.stop()
    stats = sink.stats()
    assert stats.error is None and stats.repeats > 5
    frames = read_video(path)
    assert abs(len(frames) - 20) <= 3 and len(frames) == stats.frames_sent
    assert frames[0].shape == (120, 160, 3)
    assert np.allclose(frames[-1].reshape(-1, 3).mean(axis=0), COLOUR, atol=6)


RECORDER_SCRIPT = """
import sys, time
import numpy as np
from realtime.io.sinks import RecorderSink
sink = RecorderSink(sys.argv[1], 320, 240, 25.0)
sink.start()
start = time.monotonic()
i = 0
while True:
    image = np.full((240, 320, 3), (40, 80, 200), np.uint8)
    image[:, (i * 8) % 320 : (i * 8) % 320 + 16] = 255  # a moving bar
    sink.send(image, time.monotonic_ns())
    i += 1
    if i == 50:
        print("recording", sink.process_id, flush=True)
    time.sleep(0.04)
"""


def test_recorder_file_plays_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "killed.mkv"
    script = tmp_path / "record.py"
    script.write_text(RECORDER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(path)], cwd=ROOT, stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # after ~2 s of recording
        assert line.startswith("recording"), line
        time.sleep(0.5)
    finally:
        # The whole group, ffmpeg included: nothing gets to finish the file.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    frames = read_video(path)
    assert len(frames) >= 25, len(frames)  # at most about the last second is lost
    background = frames[0][:, :, :].reshape(-1, 3)
    assert np.allclose(np.median(background, axis=0), COLOUR, atol=6)


def test_recorder_reports_full_disk_and_keeps_accepting(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is Linux-only")
    sink = RecorderSink("/dev/full", 160, 120, 30.0)
    sink.start()
    deadline = time.monotonic() + 5
    while sink.error is None and time.monotonic() < deadline:
        sink.send(solid(160, 120), time.monotonic_ns())
        time.sleep(0.02)
    assert sink.error is not None
    assert "No space left" in str(sink.error) or "ffmpeg" in str(sink.error)
    for _ in range(5):
        sink.send(solid(160, 120), time.monotonic_ns())  # never raises
    start = time.monotonic()
    sink.stop()
    assert time.monotonic() - start < 1.0
    assert sink.stats().error is not None


def test_recorder_reports_ffmpeg_death(tmp_path: Path) -> None:
    sink = RecorderSink(tmp_path / "dies.mkv", 160, 120, 30.0)
    sink.start()
    sink.send(solid(160, 120), time.monotonic_ns())
    assert wait_for(lambda: sink.stats().frames_sent > 2)
    pid = sink.process_id
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: sink.error is not None), sink.stats()
    assert "ffmpeg stopped writing" in str(sink.error)
    sink.send(solid(160, 120), time.monotonic_ns())
    sink.stop()


def test_recorder_stop_within_a_second_when_ffmpeg_hangs(tmp_path: Path) -> None:
    sink = RecorderSink(tmp_path / "hang.mkv", 640, 480, 30.0)
    sink.start()
    pid = sink.process_id
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # ffmpeg stops reading: the pipe fills, writes block
    try:
        for _ in range(10):
            sink.send(solid(640, 480), time.monotonic_ns())
            time.sleep(0.04)
        start = time.monotonic()
        sink.stop()
        assert time.monotonic() - start < 1.0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_virtual_camera_reopens_after_its_device_refuses_frames(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A device whose reader vanished raises on send: the error shows, the sink reopens
    the device with a backoff and sends again (it used to stay dead until a restart)."""
    import pyvirtualcam

    from realtime.io import sinks

    monkeypatch.setattr(sinks, "REOPEN_BACKOFF_S", (0.05, 0.2))
    broken = threading.Event()
    state = {"opens": 0, "closes": 0, "sent": 0}

    class Flaky:
        def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                     device: str | None, **kw: Any) -> None:
            if broken.is_set():
                raise OSError("no such device")
            state["opens"] += 1
            self._fourcc = fourcc

        def send(self, frame: np.ndarray) -> None:
            if broken.is_set():
                raise BrokenPipeError("reader gone")
            state["sent"] += 1

        def close(self) -> None:
            state["closes"] += 1

        def device(self) -> str:
            return "flaky"

        def native_fourcc(self) -> int:
            return self._fourcc

    name = f"swapcam-test-flaky-{id(state)}"
    pyvirtualcam.register_backend(name, Flaky)
    sink = VirtualCameraSink(64, 48, 100.0, backend=name, label=None)
    try:
        sink.start()
        feeding = threading.Event()

        def feed() -> None:
            while not feeding.is_set():
                sink.send(solid(64, 48), time.monotonic_ns())
                time.sleep(0.01)
        feeder = threading.Thread(target=feed)
        feeder.start()
        assert wait_for(lambda: state["sent"] > 3)
        broken.set()
        assert wait_for(lambda: sink.problem is not None)
        assert "reader gone" in sink.problem and "reopening" in sink.problem
        assert sink.error is None  # not stopped for good: the window keeps it attached
        time.sleep(0.3)  # reopen attempts fail while the device is gone
        sent = state["sent"]
        broken.clear()
        assert wait_for(lambda: state["sent"] > sent + 3), state
        assert sink.problem is None and sink.reopens == 1 and state["opens"] == 2
        assert sink.stats().drops > 0  # frames during the outage were dropped, counted
        feeding.set()
        feeder.join()
    finally:
        sink.stop()
        pyvirtualcam.camera.BACKENDS.pop(name, None)
    assert state["closes"] == 2  # the broken handle and the last one
