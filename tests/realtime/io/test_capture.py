"""Frame sources: files loop and are paced; a camera that vanishes is reopened.

The camera tests inject the lowest-level opener (``capture_factory``) with a
simulated device that can be unplugged and plugged back; everything above it
(configuration, backoff, state, frames) is the real code. One test drives the
real ``cv2.VideoCapture`` through ``CameraSource`` with a video file standing in
for a device, whose end of stream looks exactly like a camera that stopped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.io.capture import (
    Backoff,
    CameraSource,
    CameraUnavailable,
    FileSource,
    FrameSource,
    SourceError,
    VideoCaptureLike,
    open_capture,
    open_source,
)

GREYS = (0, 40, 80, 120, 160, 200)


def write_video(path: Path, fps: float = 50.0, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for grey in GREYS:
        writer.write(np.full((size[1], size[0], 3), grey, np.uint8))
    writer.release()
    return path


def grey_of(image: np.ndarray) -> int:
    """The nearest of GREYS (MJPG changes levels by a few)."""
    mean = float(image.mean())
    return min(GREYS, key=lambda g: abs(g - mean))


# -- files ------------------------------------------------------------------------------


def test_video_loops_at_the_files_fps(tmp_path: Path) -> None:
    source = FileSource(write_video(tmp_path / "clip.avi", fps=50.0))
    source.open()
    assert source.fps == pytest.approx(50.0)
    assert source.size == (64, 48)
    frames = [source.read() for _ in range(14)]
    source.close()
    assert all(f is not None for f in frames)
    got = [grey_of(f.image) for f in frames if f is not None]
    assert got == [GREYS[i % 6] for i in range(14)]
    assert [f.index for f in frames if f is not None] == list(range(14))
    assert source.loops == 2
    stamps = np.array([f.captured_ns for f in frames if f is not None]) / 1e9
    offsets = stamps - stamps[0]
    # Deadlines on a fixed 20 ms grid: no frame early, no drift over 13 intervals
    # (a late frame shortens the next gap instead of pushing the whole grid back).
    assert (offsets >= np.arange(14) * 0.02 - 0.001).all(), offsets
    assert 13 * 0.02 - 0.005 <= stamps[-1] - stamps[0] <= 13 * 0.02 + 0.15


def test_requested_fps_overrides_and_no_loop_ends(tmp_path: Path) -> None:
    source = FileSource(write_video(tmp_path / "clip.avi", fps=10.0), fps=200.0, loop=False)
    source.open()
    assert source.fps == 200.0
    start = time.monotonic()
    frames = [source.read() for _ in range(6)]
    elapsed = time.monotonic() - start
    assert all(f is not None for f in frames)
    assert elapsed < 0.5  # paced at 200 fps, not the file's 10
    assert source.read() is None
    assert source.state == "ended"
    source.close()


def test_single_image_repeats_as_copies(tmp_path: Path, astronaut_bgr: np.ndarray) -> None:
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), astronaut_bgr)
    source = open_source(str(path), fps=40.0)
    assert isinstance(source, FileSource)
    source.open()
    source.open()  # idempotent
    first = source.read()
    assert first is not None
    np.testing.assert_array_equal(first.image, astronaut_bgr)
    first.image[:] = 0  # a consumer drawing on its frame must not change the next one
    frames = [source.read() for _ in range(4)]
    for frame in frames:
        assert frame is not None
        np.testing.assert_array_equal(frame.image, astronaut_bgr)
    stamps = [first.captured_ns] + [f.captured_ns for f in frames if f is not None]
    assert (stamps[-1] - stamps[0]) / 1e9 >= 4 * 0.025 - 0.002
    assert "image" in source.describe() and "512x512" in source.describe()
    source.close()


def test_folder_in_name_order_skipping_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    colours = {"c.png": (0, 0, 255), "a.png": (255, 0, 0), "b.png": (0, 255, 0)}
    for name, colour in colours.items():
        cv2.imwrite(str(folder / name), np.full((30, 40, 3), colour, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (folder / "bb.png").write_bytes(b"not really a png")
    source = FileSource(folder, fps=500.0)
    source.open()
    assert source.kind == "folder"
    frames = [source.read() for _ in range(7)]
    order = [tuple(int(v) for v in f.image[0, 0]) for f in frames if f is not None]
    expected = [colours[n] for n in ("a.png", "b.png", "c.png")]
    assert order == [expected[i % 3] for i in range(7)]
    assert source.loops == 2
    source.close()


def test_bad_inputs_are_explained(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="expected a folder with images"):
        FileSource(empty).open()
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "missing.mp4"))
    garbage = tmp_path / "clip.mp4"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="expected a readable video"):
        FileSource(garbage).open()
    with pytest.raises(SourceError, match="open"):
        FileSource(tmp_path).read()


def test_open_source_dispatch(tmp_path: Path) -> None:
    camera = open_source("2", width=640, height=480, fps=30.0)
    assert isinstance(camera, CameraSource) and camera.device == 2 and camera.width == 640
    device = open_source("/dev/video7")
    assert isinstance(device, CameraSource) and device.device == "/dev/video7"
    video = open_source(str(write_video(tmp_path / "v.avi")))
    assert isinstance(video, FileSource)
    sources: list[FrameSource] = [camera, device, video]  # the protocol, checked by mypy
    assert all(callable(s.read) for s in sources)


def test_video_that_cannot_be_reopened_is_retried(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi")
    broken = threading.Event()
    opens: list[float] = []

    def factory(source: int | str, api: int) -> VideoCaptureLike:
        opens.append(time.monotonic())
        if broken.is_set():  # e.g. the file is being replaced or the share dropped
            return FakeCapture(FakeDevice(), opened=False)
        return open_capture(source, api)

    source = FileSource(video, fps=500.0, capture_factory=factory, backoff=Backoff(0.02, 0.1))
    source.open()
    assert [grey_of(f.image) for f in (source.read() for _ in range(6)) if f] == list(GREYS)
    broken.set()
    start = time.monotonic()
    while time.monotonic() - start < 0.4:
        t = time.monotonic()
        assert source.read() is None
        assert time.monotonic() - t < 0.25
    assert source.state == "reconnecting" and len(opens) >= 4
    broken.clear()
    frame = None
    deadline = time.monotonic() + 1.0
    while frame is None and time.monotonic() < deadline:
        frame = source.read()
    assert frame is not None and grey_of(frame.image) == GREYS[0] and frame.index == 6
    assert source.state == "running"
    source.close()


def test_close_interrupts_a_long_wait(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    source = FileSource(path, fps=0.5)  # a frame every two seconds
    source.open()
    assert source.read() is not None
    threading.Timer(0.1, source.close).start()
    start = time.monotonic()
    assert source.read() is None
    assert time.monotonic() - start < 0.5


# -- cameras ----------------------------------------------------------------------------


class FakeDevice:
    """A simulated camera behind the opener: plug it in and out, slow its opening.

    Like a V4L2 driver, it clamps the requested size to what it supports and
    reports its own fps and pixel format.
    """

    def __init__(self, *, max_size: tuple[int, int] = (320, 240), apis: tuple[int, ...] = ()):
        self.plugged = True
        self.max_size = max_size
        self.apis = apis or (cv2.CAP_V4L2,)
        self.open_delay = 0.0
        self.opens: list[tuple[int | str, int, float]] = []
        self.frames = 0

    def factory(self, source: int | str, api: int) -> FakeCapture:
        self.opens.append((source, api, time.monotonic()))
        time.sleep(self.open_delay)
        return FakeCapture(self, opened=self.plugged and api in self.apis)


class FakeCapture:
    def __init__(self, device: FakeDevice, opened: bool) -> None:
        self.device, self.opened = device, opened
        self.props: dict[int, float] = {}
        self.released = False

    def isOpened(self) -> bool:  # OpenCV's name
        return self.opened

    def set(self, prop: int, value: float, /) -> bool:
        self.props[prop] = value
        return True

    def _size(self) -> tuple[int, int]:
        w = int(self.props.get(cv2.CAP_PROP_FRAME_WIDTH, 640))
        h = int(self.props.get(cv2.CAP_PROP_FRAME_HEIGHT, 480))
        return min(w, self.device.max_size[0]), min(h, self.device.max_size[1])

    def get(self, prop: int, /) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return 30.0
        if prop == cv2.CAP_PROP_FOURCC:
            return self.props.get(prop, float(cv2.VideoWriter.fourcc(*"YUYV")))
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not (self.opened and self.device.plugged) or self.released:
            self.opened = False
            return False, None
        w, h = self._size()
        self.device.frames += 1
        return True, np.full((h, w, 3), self.device.frames % 256, np.uint8)

    def release(self) -> None:
        self.released = True


def test_camera_requests_format_and_reports_what_it_got() -> None:
    device = FakeDevice(max_size=(320, 240))
    camera = CameraSource(0, width=1920, height=1080, fps=60.0, capture_factory=device.factory)
    camera.open()
    capture_props = camera._capture.props  # type: ignore[union-attr]
    assert capture_props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"MJPG")
    assert capture_props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert capture_props[cv2.CAP_PROP_FRAME_WIDTH] == 1920
    assert capture_props[cv2.CAP_PROP_FPS] == 60
    text = camera.describe()
    assert "320x240 @ 30 fps MJPG" in text and "requested 1920x1080 @ 60 fps MJPG" in text
    assert camera.fps == 30.0 and camera.size == (320, 240)
    frame = camera.read()
    assert frame is not None and frame.size == (320, 240) and frame.index == 0
    camera.close()
    camera.close()
    assert camera.read() is None


def test_camera_that_cannot_open_lists_what_was_tried() -> None:
    device = FakeDevice()
    device.plugged = False

    def factory(source: int | str, api: int) -> FakeCapture:
        if api == cv2.CAP_ANY:
            raise OSError("backend exploded")
        return device.factory(source, api)

    camera = CameraSource(1, capture_factory=factory, apis=(cv2.CAP_V4L2, cv2.CAP_ANY))
    with pytest.raises(CameraUnavailable) as info:
        camera.open()
    message = str(info.value)
    assert "camera 1 via V4L2: not opened" in message
    assert "camera 1 via ANY: OSError: backend exploded" in message
    assert camera.state == "failed"


def test_camera_opened_without_frames_tries_next_backend() -> None:
    device = FakeDevice(apis=(cv2.CAP_V4L2, cv2.CAP_ANY))
    silent: list[FakeCapture] = []

    def factory(source: int | str, api: int) -> FakeCapture:
        capture = device.factory(source, api)
        if api == cv2.CAP_V4L2:
            capture.read = lambda: (False, None)  # type: ignore[method-assign]
            silent.append(capture)
        return capture

    camera = CameraSource("/dev/video9", capture_factory=factory, apis=(cv2.CAP_V4L2, cv2.CAP_ANY))
    camera.open()
    assert "via ANY" in camera.describe()
    assert silent and silent[0].released
    camera.close()


def test_camera_lost_mid_stream_is_retried_with_backoff_and_recovers() -> None:
    device = FakeDevice()
    camera = CameraSource(
        0, capture_factory=device.factory, backoff=Backoff(0.1, 0.8), apis=(cv2.CAP_V4L2,)
    )
    camera.open()
    before = [camera.read() for _ in range(3)]
    assert all(f is not None for f in before)

    device.plugged = False
    device.open_delay = 0.3  # a slow driver must not block read()
    opens_before = len(device.opens)
    slowest = 0.0
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        start = time.monotonic()
        assert camera.read() is None
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < 0.25  # never waits for the 0.3 s open
    assert camera.state == "reconnecting"
    assert camera.last_error is not None and "reopen failed" in camera.last_error
    attempts = [t for _, _, t in device.opens[opens_before:]]
    assert 3 <= len(attempts) <= 5, attempts  # ideally at 0.1, 0.6, 1.3, 2.4 s
    waits = np.diff(attempts) - device.open_delay  # from one failure to the next try
    assert waits[-1] > waits[0] * 1.5, waits  # backoff grows

    device.plugged = True
    device.open_delay = 0.0
    frame = None
    deadline = time.monotonic() + 2.0
    while frame is None and time.monotonic() < deadline:
        frame = camera.read()
    assert frame is not None, camera.describe()
    assert camera.state == "running" and camera.reconnect_attempts == 0
    assert frame.index == 3  # numbering continues across the outage
    camera.close()


def test_camera_gives_up_after_max_attempts() -> None:
    device = FakeDevice()
    camera = CameraSource(
        0, capture_factory=device.factory, backoff=Backoff(0.01, 0.02),
        max_reconnect_attempts=2, apis=(cv2.CAP_V4L2,),
    )
    camera.open()
    assert camera.read() is not None  # the frame read while opening
    device.plugged = False
    deadline = time.monotonic() + 2.0
    while camera.state != "failed" and time.monotonic() < deadline:
        assert camera.read() is None
    assert camera.state == "failed"
    assert "failed" in camera.describe()
    camera.close()


def test_close_during_reconnect_releases_the_late_capture() -> None:
    device = FakeDevice()
    made: list[FakeCapture] = []

    def factory(source: int | str, api: int) -> FakeCapture:
        capture = device.factory(source, api)
        made.append(capture)
        return capture

    camera = CameraSource(0, capture_factory=factory, backoff=Backoff(0.0, 0.0),
                          apis=(cv2.CAP_V4L2,), failures_before_reconnect=1)
    camera.open()
    assert camera.read() is not None
    device.plugged = False
    assert camera.read() is None  # lost
    device.plugged = True
    device.open_delay = 0.3
    camera.read()  # starts a background reopen that takes 0.3 s
    start = time.monotonic()
    camera.close()
    assert time.monotonic() - start < 0.1
    time.sleep(0.5)
    assert all(c.released for c in made)


def test_close_waits_for_a_read_in_progress_before_releasing() -> None:
    device = FakeDevice()
    captures: list[FakeCapture] = []
    overlap: list[bool] = []

    def factory(source: int | str, api: int) -> FakeCapture:
        capture = device.factory(source, api)
        plain_read = capture.read

        def slow_read() -> tuple[bool, np.ndarray | None]:
            time.sleep(0.2)  # a driver mid-frame
            result = plain_read()
            overlap.append(capture.released)  # released under our feet?
            return result

        capture.read = slow_read  # type: ignore[method-assign]
        captures.append(capture)
        return capture

    camera = CameraSource(0, capture_factory=factory, apis=(cv2.CAP_V4L2,))
    camera.open()
    assert camera.read() is not None  # the frame read while opening
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(camera.read()))
    reader.start()
    time.sleep(0.05)
    start = time.monotonic()
    camera.close()
    waited = time.monotonic() - start
    reader.join(1.0)
    assert 0.1 < waited < 0.5
    assert overlap == [False, False] and captures[0].released
    assert camera.read() is None and camera.state == "closed"


def test_real_opencv_capture_recovers_when_its_stream_ends(tmp_path: Path) -> None:
    """cv2.VideoCapture on a file: the end of stream is a camera that stopped."""
    video = write_video(tmp_path / "device.avi")
    camera = CameraSource(str(video), backoff=Backoff(0.02, 0.1))
    camera.open()
    assert "64x48" in camera.describe()
    greys: list[int] = []
    deadline = time.monotonic() + 3.0
    while len(greys) < 9 and time.monotonic() < deadline:
        frame = camera.read()
        if frame is not None:
            greys.append(grey_of(frame.image))
    camera.close()
    assert greys == list(GREYS) + list(GREYS[:3])


def test_a_requested_fps_is_for_cameras_only(tmp_path: Path) -> None:
    """Files play at their own rate; an index, a device or a camera's name gets the fps."""
    from realtime.io.capture import camera_fps

    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    assert camera_fps("0", 30.0) == 30.0
    assert camera_fps("/dev/video2", 30.0) == 30.0
    assert camera_fps("HD Pro Webcam C920", 30.0) == 30.0
    assert camera_fps(str(video), 30.0) is None
    assert camera_fps(str(tmp_path), 30.0) is None
