"""``bench --soak --faults``: the failures a live session meets, injected while it runs.

Each fault is a function of the running soak (:class:`SoakRig`): it breaks something,
waits for the session to come back, and returns a :class:`FaultRecord` with the message
the user sees and the seconds from the end of the fault until the session works again
(None: it did not). The same functions are the faults' tests.

The source faults go through :class:`FlakySource`, a wrapper of the real frame source
(a lost camera raises on read and on open, as OpenCV does when a device is unplugged).
The disk-full fault fills a small tmpfs under the recorder when this process may mount
one (root on Linux), else it lowers the ffmpeg child's file-size limit (``prlimit``):
either way ffmpeg fails to write mid-recording, as on a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime.types import Frame

log = logging.getLogger(__name__)

RECOVERY_TIMEOUT_S = 30.0
CAMERA_LOST_S = 5.0
SLOW_RECOVERY_S = 300.0  # what waits for a swap: a CPU under load swaps every ~10 s


@dataclass
class FaultRecord:
    t: float
    kind: str
    message: str
    recovered_s: float | None  # None: the session did not come back within the timeout
    ok: bool = True  # the fault's own check (e.g. the file so far plays)
    duration_s: float | None = None  # from the injection to the end of the checks

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FlakySource:
    """A frame source that can be lost for a while or deliver one bad frame."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lost_until = 0.0
        self._bad: deque[str] = deque()
        self.bad_delivered: list[str] = []

    @property
    def fps(self) -> float:
        return float(self.inner.fps)

    @property
    def lost(self) -> bool:
        return time.monotonic() < self._lost_until

    def lose(self, seconds: float) -> None:
        self._lost_until = time.monotonic() + seconds

    def inject_bad_frame(self, kind: str) -> None:
        """``"size"``: one frame at half the size (a camera that switched its mode);
        ``"dtype"``: one float frame (a driver that hands back the wrong type)."""
        if kind not in ("size", "dtype", "grey"):
            raise ValueError(f"bad frame kind: expected size, dtype or grey, got {kind!r}")
        self._bad.append(kind)

    def open(self) -> None:
        if self.lost:
            raise OSError(errno.ENODEV, "camera not found (unplugged)")
        self.inner.open()

    def read(self) -> Frame | None:
        if self.lost:
            raise OSError(errno.EIO, "camera read failed (unplugged)")
        frame = self.inner.read()
        if frame is None or not self._bad:
            return frame
        kind = self._bad.popleft()
        self.bad_delivered.append(kind)
        image = frame.image
        if kind == "size":
            return Frame(frame.index, frame.captured_ns,
                         np.ascontiguousarray(image[::2, ::2]))
        image = (np.ascontiguousarray(image[:, :, 0]) if kind == "grey"
                 else image.astype(np.float32))
        return Frame(frame.index, frame.captured_ns, image)  # raises: the frame check

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return str(self.inner.describe())


class NullCameraBackend:
    """A pyvirtualcam backend that accepts frames and forgets them (the soak's virtual
    camera), whose consumer can go away (``gone``: ``send`` raises, as a device whose
    reader vanished)."""

    NAME = "swapcam-soak-null"
    gone = threading.Event()
    frames = 0
    opened = 0

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                 device: str | None, **kw: Any) -> None:
        if NullCameraBackend.gone.is_set():
            raise OSError(errno.ENODEV, "virtual camera device has no consumer")
        type(self).opened += 1
        self._fourcc = fourcc

    def send(self, frame: np.ndarray) -> None:
        if NullCameraBackend.gone.is_set():
            raise BrokenPipeError(errno.EPIPE, "virtual camera consumer gone")
        type(self).frames += 1

    def close(self) -> None:
        """Nothing to release."""

    def device(self) -> str:
        return "null"

    def native_fourcc(self) -> int:
        return self._fourcc

    @classmethod
    def register(cls) -> str:
        import pyvirtualcam

        pyvirtualcam.register_backend(cls.NAME, cls)
        return cls.NAME

    @classmethod
    def unregister(cls) -> None:
        """Take the null device out of pyvirtualcam's process-wide registry, so a later
        virtual camera in the same process (a window, a test) never opens it by default."""
        import pyvirtualcam.camera

        pyvirtualcam.camera.BACKENDS.pop(cls.NAME, None)


class GatedSink:
    """Forwards frames to ``inner`` only once ``gate`` is set: the disk-full fault's
    recorder starts writing at the fault, so a long run does not fill its small disk
    before (an hour at 640x480 is about 500 MB)."""

    name = "recorder-disk-full"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()

    @property
    def error(self) -> BaseException | None:
        return self.inner.error  # type: ignore[no-any-return]

    def start(self) -> None:
        self.inner.start()

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        if self.gate.is_set():
            self.inner.send(image, captured_ns)

    def stop(self) -> None:
        self.inner.stop()

    def stats(self) -> Any:
        return self.inner.stats()

    def describe(self) -> str:
        return str(self.inner.describe())


@dataclass
class SoakRig:
    """What the faults reach into: the running pipeline and its parts."""

    pipeline: Any
    source: FlakySource
    bank: Any  # SourceBank
    photos_dir: Path
    spare_photo: Path
    models_dir: Path
    model: str
    recorder: Any  # the main RecorderSink
    small_recorder: Any | None  # a RecorderSink on a small filesystem (disk full)
    small_fs: Path | None
    settings_store: Any  # SettingsStore
    vcam: Any | None  # VirtualCameraSink
    clock: Callable[[], float]  # seconds since the run started
    live_child: Callable[[Path], list[str]] | None = None  # command recording to PATH
    work_dir: Path = Path(".")
    # set while a fault needs the identity the user chose to stay (the soak's periodic
    # identity switch waits)
    hold_identity: threading.Event = field(default_factory=threading.Event)
    small_gate: threading.Event | None = None  # opens the small recorder (GatedSink)


def wait_until(condition: Callable[[], bool], timeout: float = RECOVERY_TIMEOUT_S,
               step: float = 0.05) -> float | None:
    """Seconds until ``condition()`` held, or None after ``timeout``."""
    t0 = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)


def _frames_out(rig: SoakRig) -> int:
    return int(rig.pipeline.stats_recorder.total("out"))


def frames_flow(rig: SoakRig, count: int = 5, timeout: float = RECOVERY_TIMEOUT_S) -> float | None:
    """Seconds until ``count`` more frames reached the outputs (None: they did not)."""
    start = _frames_out(rig)
    return wait_until(lambda: _frames_out(rig) >= start + count and rig.pipeline.error is None,
                      timeout)


def fault_camera_lost(rig: SoakRig) -> FaultRecord:
    t = rig.clock()
    rig.source.lose(CAMERA_LOST_S)
    seen = wait_until(lambda: rig.pipeline.stats().source_state == "reconnecting", 3.0)
    time.sleep(max(0.0, CAMERA_LOST_S - (seen or 0.0)))
    wait_until(lambda: not rig.source.lost, 2.0)
    back = frames_flow(rig)
    stats = rig.pipeline.stats()
    message = (f"status '{'reconnecting' if seen is not None else 'running'}' while the "
               f"camera was gone ({CAMERA_LOST_S:g} s), no faces; back by itself "
               f"({stats.reconnects} reopen attempts so far)")
    return FaultRecord(t, "camera_lost", message, _round(back), back is not None)


def fault_source_photo(rig: SoakRig) -> FaultRecord:
    """Delete the active identity's photo and add another one while live; switch to it."""
    t = rig.clock()
    rig.hold_identity.set()
    try:
        return _replace_photo(rig, t)
    finally:
        rig.hold_identity.clear()


def _replace_photo(rig: SoakRig, t: float) -> FaultRecord:
    before = rig.bank.sources
    active = before[min(rig.pipeline.source_index, len(before) - 1)]
    deleted = [Path(p) for p in active.paths if Path(p).parent == rig.photos_dir]
    for path in deleted:
        path.unlink(missing_ok=True)
    new_path = rig.photos_dir / f"added-{int(t)}{rig.spare_photo.suffix}"
    shutil.copyfile(rig.spare_photo, new_path)
    added = rig.bank.add([new_path])
    rig.pipeline.select_source(len(rig.bank.sources) - 1)
    given = ""
    tracks = [tr.track_id for tr in rig.pipeline.tracker.tracks]
    if rig.pipeline.face_map is not None and tracks:
        # With a map every face may be someone's (random-weight encoders match every face
        # to a reference): give the new identity to a person too, as a click does.
        rig.pipeline.assign_face(tracks[0], added.name)
        given = f" and to the person on track {tracks[0]}"
    # a CPU swap of one face takes seconds (tens under load, and the swap worker also
    # embeds new tracks for the map and runs the meter): the new identity shows after
    # the next swap of a face that wears the active source
    worn = wait_until(lambda: any(
        (tex := rig.pipeline.textures.get(tid)) is not None and tex.source_name == added.name
        for tid in [tr.track_id for tr in rig.pipeline.tracker.tracks]), SLOW_RECOVERY_S)
    kept = active.name in [s.name for s in rig.bank.sources]
    message = (f"deleted {', '.join(p.name for p in deleted) or 'nothing'} of "
               f"'{active.name}' (its identity stays in memory: {'kept' if kept else 'LOST'});"
               f" added '{added.name}' and switched to it{given}")
    return FaultRecord(t, "source_photo", message, _round(worn), worn is not None and kept)


def fault_model_damaged(rig: SoakRig) -> FaultRecord:
    """Overwrite part of the swap model's file on disk: the next open must refuse it, the
    running engine must keep swapping; the file is put back afterwards."""
    from engines.models import MODELS, ModelCorrupt, require_model

    t = rig.clock()
    path = rig.models_dir / rig.model / MODELS[rig.model].files[0].name
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        original = f.read(4096)
        f.seek(path.stat().st_size // 2)
        f.write(bytes(len(original)))
    try:
        try:
            require_model(rig.models_dir, rig.model)
            refused = "the next open did NOT notice"
            detected = False
        except ModelCorrupt as exc:
            refused = f"the next open refuses it ({str(exc).splitlines()[0][:120]})"
            detected = True
        swaps0 = rig.pipeline.stats_recorder.total("swap")
        swapping = wait_until(lambda: rig.pipeline.stats_recorder.total("swap") > swaps0)
    finally:
        with open(path, "r+b") as f:
            f.seek(path.stat().st_size // 2)
            f.write(original)
    message = (f"{path.name} damaged on disk: {refused}; the running engine "
               f"{'keeps swapping' if swapping is not None else 'STOPPED swapping'}")
    return FaultRecord(t, "model_damaged", message, _round(swapping),
                       detected and swapping is not None)


def fault_disk_full(rig: SoakRig) -> FaultRecord:
    """Fill the small filesystem under the second recorder (or cap its ffmpeg's file
    size): recording stops with an error, the file so far plays, the session goes on."""
    t = rig.clock()
    recorder = rig.small_recorder
    if recorder is None:
        return FaultRecord(t, "disk_full", "no second recorder to fill", None, False)
    if rig.small_gate is not None:
        rig.small_gate.set()
        wait_until(lambda: recorder.stats().frames_sent > 30, 10.0)  # a second or more
    filler = None
    if rig.small_fs is not None:
        filler = rig.small_fs / "filler.bin"
        _fill(filler)
        how = f"tmpfs {rig.small_fs} filled"
    else:
        import psutil

        pid = recorder.process_id
        size = recorder.path.stat().st_size if recorder.path.exists() else 0
        psutil.Process(pid).rlimit(psutil.RLIMIT_FSIZE, (size + 65536, size + 65536))
        how = "ffmpeg's file-size limit lowered to the file's size"
    try:
        failed = wait_until(lambda: recorder.error is not None)
        flowing = frames_flow(rig)
    finally:
        if filler is not None:
            filler.unlink(missing_ok=True)
    frames = playable_frames(recorder.path)
    message = (f"{how}: recording stopped with '{recorder.error}'" if failed is not None
               else f"{how}: the recorder did NOT report an error")
    message += f"; the file so far plays ({frames} frames); the session goes on"
    ok = failed is not None and frames > 0 and flowing is not None
    return FaultRecord(t, "disk_full", message, _round(flowing), ok)


def _fill(path: Path) -> None:
    chunk = bytes(1 << 20)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    log.info("filled %s until ENOSPC", path.parent)


def playable_frames(path: Path, timeout: float = 1800.0) -> int:
    """Video frames ffmpeg decodes from ``path`` without an error (0: it cannot)."""
    import imageio_ffmpeg

    if not Path(path).exists():
        return 0
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
               "-i", str(path), "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 0
    if done.returncode != 0:
        return 0
    counts = [int(line.split(b"=", 1)[1]) for line in done.stdout.splitlines()
              if line.startswith(b"frame=") and line.split(b"=", 1)[1].strip().isdigit()]
    return counts[-1] if counts else 0


def fault_settings_read_only(rig: SoakRig) -> FaultRecord:
    """The settings file made read-only while live: saving warns, the session goes on."""
    from realtime.settings_store import SettingsSaveError

    t = rig.clock()
    store = rig.settings_store
    folder = Path(store.path).parent
    undo = make_read_only(folder)
    try:
        try:
            settings = rig.pipeline.settings
            changed = settings.with_changes(detect_every=settings.detect_every % 6 + 2)
            rig.pipeline.update_settings(changed)
            store.save(changed)
            warning = "the save did NOT fail"
            warned = False
        except SettingsSaveError as exc:
            warning = f"warning shown: '{exc}'"
            warned = True
        flowing = frames_flow(rig)
    finally:
        undo()
    saved = wait_until(lambda: _saves(store, rig.pipeline.settings), 5.0)
    message = f"{warning}; the session goes on; saved again once writable"
    ok = warned and flowing is not None and saved is not None
    return FaultRecord(t, "settings_read_only", message, _round(flowing), ok)


def _saves(store: Any, settings: Any) -> bool:
    try:
        store.save(settings)
    except OSError:
        return False
    return True


def make_read_only(folder: Path) -> Callable[[], None]:
    """Make ``folder`` and its files read-only; returns the undo. Root ignores file modes,
    so as root the folder is bind-mounted read-only over itself (the kernel refuses writes
    with EROFS)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                              capture_output=True, check=False)
        if bind.returncode == 0:
            remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                                     capture_output=True, check=False)
            if remount.returncode == 0:
                return lambda: _umount(folder)
            _umount(folder)
    modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)

    def undo() -> None:
        for path, mode in modes.items():
            with contextlib.suppress(OSError):
                path.chmod(mode)
    return undo


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def mount_small_fs(folder: Path, size_mb: int = 64) -> bool:
    """A tmpfs of ``size_mb`` at ``folder`` (True) when this process may mount one."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount")):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                           str(folder)], capture_output=True, check=False)
    return done.returncode == 0


def unmount_small_fs(folder: Path) -> None:
    _umount(folder)


def fault_vcam_consumer_gone(rig: SoakRig) -> FaultRecord:
    """The virtual camera's reader goes away for a few seconds, then comes back."""
    t = rig.clock()
    vcam = rig.vcam
    if vcam is None:
        return FaultRecord(t, "vcam_consumer_gone", "no virtual camera", None, False)
    NullCameraBackend.gone.set()
    try:
        seen = wait_until(lambda: vcam.problem is not None, 5.0)
        shown = vcam.problem
        flowing = frames_flow(rig)
        time.sleep(CAMERA_LOST_S)
    finally:
        NullCameraBackend.gone.clear()
    sent1 = vcam.stats().frames_sent
    back = wait_until(lambda: vcam.stats().frames_sent > sent1 + 5, 15.0)
    message = (f"virtual camera: '{shown if seen is not None else 'nothing noticed'}'; the "
               f"session goes on; "
               + ("sending again once the device takes frames" if back is not None else
                  "the virtual camera did NOT resume"))
    return FaultRecord(t, "vcam_consumer_gone", message, _round(back),
                       back is not None and flowing is not None and vcam.error is None)


def fault_bad_frame(rig: SoakRig) -> FaultRecord:
    """One frame of another size, one grey and one of the wrong type from the source."""
    t = rig.clock()
    for kind in ("size", "grey", "dtype"):
        rig.source.inject_bad_frame(kind)
    delivered = wait_until(lambda: len(rig.source.bad_delivered) >= 3, 10.0)
    back = frames_flow(rig, count=10)
    error = rig.pipeline.error
    message = ("a half-size frame, a grey frame and a float frame from the source: "
               + ("the session goes on" if error is None and back is not None
                  else f"the session STOPPED ({error})"))
    return FaultRecord(t, "bad_frame", message, _round(back),
                       delivered is not None and back is not None and error is None)


def fault_sigterm_recording(rig: SoakRig) -> FaultRecord:
    """A live session (another process) recording, sent SIGTERM: the file plays."""
    t = rig.clock()
    if rig.live_child is None:
        return FaultRecord(t, "sigterm_recording", "no live command to run", None, False)
    out = rig.work_dir / f"sigterm-{int(t)}.mkv"
    result = sigterm_while_recording(rig.live_child(out), out)
    return FaultRecord(t, "sigterm_recording", result.message, result.seconds, result.ok)


@dataclass
class SigtermResult:
    ok: bool
    message: str
    seconds: float | None
    exit_code: int | None = None


def sigterm_while_recording(command: list[str], out: Path, *, record_s: float = 4.0,
                            start_timeout: float = 90.0) -> SigtermResult:
    """Start ``command`` (which records to ``out``), wait until ``out`` grows for
    ``record_s``, send SIGTERM, and check that the file plays."""
    log_path = out.with_suffix(".log")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        started = wait_until(lambda: (out.exists() and out.stat().st_size > 0)
                             or process.poll() is not None, start_timeout, 0.2)
        if started is None or process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-400:]
            return SigtermResult(False, f"the live session did not start recording: {tail}",
                                 None)
        time.sleep(record_s)
        t0 = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        ended = time.monotonic() - t0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    frames = playable_frames(out)
    ok = frames > 0 and code == 0  # it stopped as asked: recording closed, not killed
    return SigtermResult(ok, f"SIGTERM while recording: the app stopped in {ended:.1f} s "
                         f"(exit {code}); the file plays ({frames} frames)", round(ended, 2),
                         code)


FAULTS: dict[str, Callable[[SoakRig], FaultRecord]] = {
    "camera_lost": fault_camera_lost,
    "source_photo": fault_source_photo,
    "model_damaged": fault_model_damaged,
    "disk_full": fault_disk_full,
    "settings_read_only": fault_settings_read_only,
    "vcam_consumer_gone": fault_vcam_consumer_gone,
    "bad_frame": fault_bad_frame,
    "sigterm_recording": fault_sigterm_recording,
}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
