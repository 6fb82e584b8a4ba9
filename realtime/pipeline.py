"""The live pipeline: every thread and every handoff, wired in one place.

::

    source ─► [capture] ─slot─► [process] ─slot─► [output] ─► sinks
                                  │   ▲  └─slot─► preview (GUI polls the version)
                        detect job│   │detections
                                  ▼   │
                               [detect]          (optional worker: detection never stalls frames)
                                  │
                          swap job│   textures (newest swapped crop per track id)
                                  ▼   │
                                [swap]           (async mode: the swapper is slower than frames)

Every handoff is a :class:`~realtime.slot.LatestSlot`: one item, the newest wins, drops
counted, so latency is bounded by construction. The process thread tracks faces between
detections (:mod:`realtime.faces.track`), aligns them, and either swaps synchronously or, when
the swapper is slower than the camera, pastes the newest swapped crop of each track with
the current frame's own transform while the swap worker refreshes it.

The owner stops what it starts: :meth:`Pipeline.stop` sets an Event, closes the slots to
wake waiters, and joins threads in reverse start order under one deadline. A worker's
exception stops the pipeline and is kept as :class:`WorkerError` (with the traceback),
raised by :meth:`Pipeline.check` and :meth:`Pipeline.stop`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from realtime.config import Settings
from realtime.faces.mapping import NO_MAP, photo_vector
from realtime.faces.plan import FacePlan, plan_faces
from realtime.faces.track import FaceTracker
from realtime.frame.motion import TextureMotion, texture_mode_in_effect
from realtime.frame.textures import Texture, TextureStore
from realtime.slot import LatestSlot
from realtime.stats import PipelineStats, StatsRecorder
from realtime.types import Detection, Frame, SourceFace, StageTimings, SwapResult
from realtime.worker import Worker

if TYPE_CHECKING:
    from realtime.faces.detect import FaceDetector
    from realtime.faces.mapping import FaceMap
    from realtime.faces.quality import FaceQuality, QualityMeter
    from realtime.frame.process import FaceProcessor
    from realtime.io.capture import FrameSource
    from realtime.io.sinks import FrameSink

log = logging.getLogger(__name__)

SWAP_MODES = ("auto", "sync", "async")
# auto mode: go async when a swap takes more than this share of a frame interval, back
# to sync below the lower share (hysteresis, so the mode does not flap).
ASYNC_ABOVE = 0.6
SYNC_BELOW = 0.35


class WorkerError(RuntimeError):
    """A pipeline thread failed. ``thread`` names it; ``traceback`` is the full text."""

    def __init__(self, thread: str, exc: BaseException) -> None:
        self.thread = thread
        self.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"{thread} thread failed: {type(exc).__name__}: {exc}")
        self.__cause__ = exc


class _SourceList(Protocol):
    @property
    def sources(self) -> tuple[SourceFace, ...]: ...


@dataclass(frozen=True)
class _Controls:
    """What the user chose; replaced as a whole so the process thread sees one state."""

    source_index: int
    swap_enabled: bool
    track_id: int | None = None  # "swap only this person"


@dataclass(frozen=True)
class _SwapJob:
    frame_index: int
    track_ids: tuple[int, ...]
    aligned: tuple[Any, ...]  # the processor's own aligned faces (device ones on the GPU path)
    sources: tuple[SourceFace, ...] = ()  # one per face
    image: np.ndarray | None = None
    landmarks: tuple[np.ndarray, ...] = ()  # per face, frame pixels (for the meter)
    crops: tuple[Any, ...] | None = None  # swapped already (sync mode): only measure
    identify: tuple[tuple[int, np.ndarray], ...] = ()  # (track, landmarks) the map must embed


@dataclass(frozen=True)
class _DetectJob:
    image: np.ndarray
    grey: np.ndarray


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _host_crop(item: Any) -> np.ndarray:
    """A BGR uint8 crop on the host from an aligned face (host or device) or a swapped
    crop (numpy, or a torch tensor on the GPU path: downloaded here, on the worker)."""
    crop = getattr(item, "crop", None)
    if crop is None:
        crop = getattr(item, "crop_t", item)
    if not isinstance(crop, np.ndarray):
        crop = crop.detach().cpu().numpy()
    return np.ascontiguousarray(crop)


class Pipeline:
    """capture → process → output threads with one-slot handoffs. See the module doc."""

    def __init__(
        self,
        source: FrameSource,
        processor: FaceProcessor,
        detector: FaceDetector,
        sources: _SourceList | Sequence[SourceFace],
        sinks: Sequence[FrameSink],
        settings: Settings,
        *,
        detect_in_worker: bool = True,
        tracker: FaceTracker | None = None,
        reconnect_backoff: tuple[float, float] = (0.05, 2.0),
        swap_worker_nice: int = 5,
        face_map: FaceMap | None = None,
        meter: QualityMeter | None = None,
    ) -> None:
        if settings.swap_mode not in SWAP_MODES:
            raise ValueError(f"swap_mode: expected one of {SWAP_MODES}, got {settings.swap_mode!r}")
        self.source = source
        self.processor = processor
        self.detector = detector
        self._sources = sources
        self.sinks = tuple(sinks)
        self._settings = settings
        self._detect_in_worker = detect_in_worker
        self.tracker = tracker or FaceTracker(detect_every=settings.detect_every)
        self._backoff = reconnect_backoff

        self._lock = threading.Lock()
        # dlib's detector is not thread-safe: the worker and a match-reference lookup
        # on the process thread must not run it at once.
        self._detector_lock = threading.Lock()
        self._controls = _Controls(settings.active_source, settings.swap_enabled)
        self._stop = threading.Event()
        self._cancelled = False  # stop() cancelled a model call: its error is expected
        self._threads: list[threading.Thread] = []
        self._stragglers: list[threading.Thread] = []
        self.sink_errors: list[tuple[str, Exception]] = []  # outputs that failed to start
        self._error: WorkerError | None = None
        self.stats_recorder = StatsRecorder()

        self.captured: LatestSlot[Frame] = LatestSlot("capture")
        self.output: LatestSlot[SwapResult] = LatestSlot("output")
        self.preview_slot: LatestSlot[SwapResult] = LatestSlot("preview")
        self._detect: Worker[_DetectJob, tuple[list[Detection], np.ndarray]] = Worker(
            "detect", self._run_detect
        )
        # The swap worker yields the CPU to the frame path: on a small CPU a fluid
        # stream matters more than a slightly faster texture refresh.
        self._swap: Worker[_SwapJob, None] = Worker("swap", self._run_swap,
                                                    nice=swap_worker_nice)
        self.textures = TextureStore()
        self.motion = TextureMotion()
        self._swap_ms: float | None = None  # EMA of one swap call
        self._mode = "async" if settings.swap_mode == "auto" else settings.swap_mode
        self._faces = 0
        self._source_state = "stopped"
        self._reconnects = 0
        self._last_source_name: str | None = None
        # Both run on the swap worker only: the frame path reads their results.
        self.face_map = face_map
        self._follow_faces_mode(settings)
        self.meter = meter
        if meter is not None and meter.detect is None:
            meter.detect = self._locked_detect
            meter.mesh = getattr(detector, "mesh", None)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Open the source and sinks, then start the threads (downstream first)."""
        if self._threads:
            raise RuntimeError("pipeline already started")
        self._stop.clear()
        self._cancelled = False
        for slot in self._slots():
            slot.reopen()
        for worker in (self._detect, self._swap):
            worker.reset()
        self.tracker.reset()
        self.textures.clear()
        self.motion.reset()
        self.source.open()
        self._source_state = "running"
        self.sink_errors = []
        for sink in self.sinks:
            try:
                sink.start()
            except Exception as exc:
                # An output that cannot open (no virtual camera device) must not stop
                # the stream: the error is kept for the UI/CLI, the other outputs run.
                log.error("%s could not start: %s", sink.describe(), exc)
                self.sink_errors.append((sink.describe(), exc))
        plan: list[tuple[str, Callable[[], None]]] = [
            ("output", self._output_loop),
            ("swap", lambda: self._swap.loop(self._stop)),
        ]
        if self._detect_in_worker:
            plan.append(("detect", lambda: self._detect.loop(self._stop)))
        plan += [("process", self._process_loop), ("capture", self._capture_loop)]
        for name, fn in plan:
            thread = threading.Thread(
                target=self._guarded, args=(name, fn), name=f"swapcam-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 1.0, *, raise_error: bool = True) -> None:
        """Stop every thread within ``timeout`` seconds (a stuck one is left behind as a
        daemon and logged), then raise the first worker error, if any."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        for slot in self._slots():
            slot.close()
        # a model call in progress (seconds per face on a CPU) ends now, not after
        cancel = getattr(getattr(self.processor, "swapper", None), "cancel", None)
        if cancel is not None and self._threads:
            self._cancelled = True
            try:
                cancel()
            except Exception:  # best effort: the thread still ends after its call
                log.exception("cancelling the model call failed")
        for thread in reversed(self._threads):
            # Keep a fifth of the time for closing the sinks and the source.
            thread.join(max(0.0, deadline - time.monotonic() - timeout * 0.2))
            if thread.is_alive():
                # e.g. the swap worker inside a one-second model call: it ends after
                # the call (it checks the Event); wait_stopped() waits for it.
                log.info("%s still busy after %.1f s; it ends after its current call",
                         thread.name, timeout)
                self._stragglers.append(thread)
        self._threads = []
        # Sinks and the source close in parallel: one stuck output must not hold the
        # others (nor the caller) past the deadline.
        closers: list[Callable[[], None]] = [*(s.stop for s in reversed(self.sinks))]
        closers.append(self.source.close)
        threads = [threading.Thread(target=self._close_one, args=(c,), daemon=True,
                                    name="swapcam-close") for c in closers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.warning("a sink or the source did not close within %.1f s", timeout)
        self._source_state = "stopped"
        if raise_error:
            self.check()

    def wait_stopped(self, timeout: float = 30.0) -> bool:
        """After :meth:`stop`, wait for threads that were busy in a long call (a model
        run cannot be interrupted). A process should call this before exiting, since
        the interpreter must not shut down under a native call. True when all ended."""
        deadline = time.monotonic() + timeout
        for thread in self._stragglers:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stragglers = [t for t in self._stragglers if t.is_alive()]
        return not self._stragglers

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(raise_error=exc[0] is None)

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    @property
    def error(self) -> WorkerError | None:
        return self._error

    def check(self) -> None:
        """Raise the first worker error (with its traceback attached), if any."""
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------- controls
    def select_source(self, index: int) -> None:
        count = len(self._source_faces())
        if not 0 <= index < max(count, 1):
            raise IndexError(f"source index: expected 0..{count - 1}, got {index}")
        with self._lock:
            self._controls = _Controls(index, self._controls.swap_enabled, self._controls.track_id)

    def next_source(self) -> int:
        return self._step_source(+1)

    def previous_source(self) -> int:
        return self._step_source(-1)

    def _step_source(self, step: int) -> int:
        count = len(self._source_faces())
        with self._lock:
            index = (self._controls.source_index + step) % max(count, 1)
            self._controls = _Controls(index, self._controls.swap_enabled, self._controls.track_id)
        return index

    @property
    def source_index(self) -> int:
        return self._controls.source_index

    def set_swap_enabled(self, enabled: bool) -> None:
        with self._lock:
            c = self._controls
            self._controls = _Controls(c.source_index, bool(enabled), c.track_id)

    def select_track(self, track_id: int | None) -> None:
        """Swap only the face with this track id (``None``: back to ``settings.faces``)."""
        with self._lock:
            c = self._controls
            self._controls = _Controls(c.source_index, c.swap_enabled, track_id)

    def assign_face(self, track_id: int, source_name: str | None) -> None:
        """The person on ``track_id`` wears ``source_name`` (None: the assignment ends;
        ``mapping.ACTIVE_SOURCE`` / ``LEAVE_ALONE``: the active source / never swapped);
        followed through tracking and re-identified after a loss (``FaceMap``)."""
        face_map = self._ensure_map()
        if source_name is None:
            face_map.unassign_track(track_id)
        else:
            face_map.assign_track(track_id, source_name)

    def face_assignments(self) -> dict[int, str]:
        """Track id → the source name it wears, for the faces a map assigns."""
        from realtime.faces.mapping import PENDING, UNASSIGNED

        if self.face_map is None or not self.face_map.active:
            return {}
        names = {t.track_id: self.face_map.resolve(t.track_id) for t in self.tracker.tracks}
        return {k: v for k, v in names.items() if v not in (PENDING, UNASSIGNED)}

    def face_quality(self) -> dict[int, FaceQuality]:
        """The meter's newest numbers per track id (empty when it is off)."""
        if self.meter is None or not self._settings.quality_meter:
            return {}
        return self.meter.results()

    def update_settings(self, settings: Settings) -> None:
        """Takes effect on the next processed frame (model/engine changes need a new
        pipeline: they change the processor)."""
        if settings.swap_mode not in SWAP_MODES:
            raise ValueError(f"swap_mode: expected one of {SWAP_MODES}, got {settings.swap_mode!r}")
        with self._lock:
            old = self._settings
            self._settings = settings
            c = self._controls
            index = settings.active_source if settings.active_source != old.active_source \
                else c.source_index
            enabled = settings.swap_enabled if settings.swap_enabled != old.swap_enabled \
                else c.swap_enabled
            self._controls = _Controls(index, enabled, c.track_id)
        if settings.detect_width != old.detect_width and hasattr(self.detector, "detect_width"):
            # the embedded detector reads its width once per call: the next detection
            # searches the new size (SCRFD has a fixed input and ignores it)
            self.detector.detect_width = settings.detect_width
        set_threshold = getattr(self.detector, "set_score_threshold", None)
        if settings.det_threshold != old.det_threshold and set_threshold is not None:
            set_threshold(settings.det_threshold)  # read per call: the next detection uses it
        if self.face_map is not None and settings.unassigned_faces != old.unassigned_faces:
            from realtime.faces.mapping import check_policy

            self.face_map.unassigned = check_policy(settings.unassigned_faces)
        if settings.faces != old.faces:
            self._follow_faces_mode(settings)

    def _ensure_map(self) -> FaceMap:
        if self.face_map is None:
            from realtime.faces.mapping import FaceMap

            self.face_map = FaceMap(threshold=self._settings.match_threshold,
                                    unassigned=self._settings.unassigned_faces)
        return self.face_map

    def _follow_faces_mode(self, settings: Settings) -> None:
        """``faces = match:REF`` is the face map's match entry (embedded on the worker)."""
        from realtime.faces.select import parse_mode

        mode = parse_mode(settings.faces)
        if mode.kind == "match":
            self._ensure_map().set_match_photo(mode.reference)
        elif self.face_map is not None:
            self.face_map.set_match_photo(None)

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def swap_mode(self) -> str:
        """The mode in effect now: ``"sync"`` or ``"async"``."""
        return self._mode

    # --------------------------------------------------------------- output
    def preview(self) -> tuple[int, SwapResult | None]:
        """``(version, newest result)``; redraw only when the version changed."""
        return self.preview_slot.latest()

    def stats(self) -> PipelineStats:
        quality = None
        if self.meter is not None and self._settings.quality_meter:
            quality = self.meter.summary()
        drops = {
            "capture": self.captured.drops,
            "output": self.output.drops,
        }
        for sink in self.sinks:  # sinks with their own thread drop too
            sink_stats = getattr(sink, "stats", None)
            count = getattr(sink_stats() if callable(sink_stats) else None, "drops", 0)
            if count:
                drops[getattr(sink, "name", type(sink).__name__)] = int(count)
        return self.stats_recorder.snapshot(
            drops=drops,
            # a lost or ended source shows no faces (not the last frame's count)
            faces=0 if self._source_state in ("reconnecting", "ended") else self._faces,
            swap_mode=self._mode,
            source_name=self._last_source_name,
            # a source that reconnects by itself (camera) knows its state best
            source_state=str(getattr(self.source, "state", None) or self._source_state)
            if self.running else self._source_state,
            reconnects=self._reconnects,
            error=None if self._error is None else str(self._error),
            identity=None if quality is None else quality.identity,
            identity_before=None if quality is None else quality.before,
            keep=None if quality is None else quality.keep,
            meter_encoder="" if quality is None else quality.encoder
            + ("" if quality.independent else " (the swap's own encoder)"),
        )

    # ------------------------------------------------------------- internals
    def _slots(self) -> list[LatestSlot[Any]]:
        return [self.captured, self.output, self.preview_slot,
                self._detect.jobs, self._detect.results, self._swap.jobs, self._swap.results]

    def _source_faces(self) -> tuple[SourceFace, ...]:
        bank = self._sources
        if isinstance(bank, Sequence):
            return tuple(bank)
        return tuple(bank.sources)

    def _guarded(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # every failure reaches the owner, none is swallowed
            if self._stop.is_set() and isinstance(exc, Exception) and self._cancelled:
                log.debug("%s ended by stop: %s", name, exc)
                return
            error = WorkerError(name, exc)
            log.error("%s", error.traceback)
            with self._lock:
                if self._error is None:
                    self._error = error
            self._stop.set()
            for slot in self._slots():
                slot.close()

    @staticmethod
    def _close_one(close: Callable[[], None]) -> None:
        try:
            close()
        except Exception:  # closing must go on for the others; the failure is logged
            log.exception("closing failed")

    # ---------------------------------------------------------------- capture
    def _capture_loop(self) -> None:
        delay = self._backoff[0]
        last_frame = time.monotonic()
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except Exception as exc:  # a camera unplugged or a file gone: retried, reported
                log.warning("source %s failed (%s); reconnecting", self.source.describe(), exc)
                self._source_state = "reconnecting"
                delay = self._reconnect(delay)
                last_frame = time.monotonic()
                continue
            if frame is None:
                # No frame now. Sources that report a state reconnect by themselves
                # (camera) or have ended (file without loop); any other source that
                # stays silent for long is reopened like a failed one.
                state = getattr(self.source, "state", None)
                if state in ("reconnecting", "ended"):
                    self._source_state = str(state)
                    last_frame = time.monotonic()
                    self._stop.wait(0.005)
                elif time.monotonic() - last_frame > 2.0:
                    log.warning("source %s gave no frame for 2 s; reopening",
                                self.source.describe())
                    self._source_state = "reconnecting"
                    delay = self._reconnect(delay)
                    last_frame = time.monotonic()
                else:
                    self._stop.wait(0.005)
                continue
            last_frame = time.monotonic()
            delay = self._backoff[0]
            self._source_state = "running"
            self.stats_recorder.add_stage(
                "capture", max(0.0, (time.monotonic_ns() - frame.captured_ns) / 1e6)
            )
            self.stats_recorder.tick("in")
            self.captured.put(frame)

    def _reconnect(self, delay: float) -> float:
        """Close, wait ``delay`` (interruptible), reopen; returns the next delay."""
        try:
            self.source.close()
        except Exception as exc:  # the old handle may be broken already
            log.debug("closing the failed source: %s", exc)
        while not self._stop.wait(delay):
            self._reconnects += 1
            try:
                self.source.open()
            except Exception as exc:
                log.warning("reopening %s failed: %s", self.source.describe(), exc)
                delay = min(delay * 2.0, self._backoff[1])
                continue
            log.info("source %s reopened", self.source.describe())
            self._source_state = "running"
            return self._backoff[0]
        return delay

    # ---------------------------------------------------------------- process
    def _run_detect(self, job: _DetectJob) -> tuple[list[Detection], np.ndarray]:
        t0 = time.perf_counter()
        with self._detector_lock:
            detections = list(self.detector.detect(job.image))
        self.stats_recorder.add_stage("detect", _ms(t0))
        return detections, job.grey

    def _locked_detect(self, image: np.ndarray) -> list[Detection]:
        with self._detector_lock:
            return list(self.detector.detect(image))

    def _run_swap(self, job: _SwapJob) -> None:
        """The swap worker: embed the face map's photos and new tracks, swap (unless the
        job brings swapped crops), then measure for the meter when it is due."""
        self._embed_map_photos()
        if job.identify and job.image is not None:
            self._identify_tracks(job.image, job.identify)
        if job.crops is None:
            t0 = time.perf_counter()
            crops = self._swap_grouped(job.aligned, job.sources, job.track_ids)
            if crops:
                self._note_swap(_ms(t0))
            self._store_textures(job.frame_index, job.track_ids, job.aligned, crops,
                                 job.sources)
        else:
            crops = list(job.crops)
        self._measure(job, crops, job.sources)

    def _store_textures(self, frame_index: int, ids: Sequence[int], aligned: Sequence[Any],
                        crops: Sequence[Any], sources: Sequence[SourceFace]) -> None:
        for tid, face, crop, src in zip(ids, aligned, crops, sources, strict=True):
            target = getattr(face, "crop", None)
            self.textures.put(tid, Texture(crop, src.name, frame_index, tid,
                                           target if isinstance(target, np.ndarray) else None))

    def _swap_grouped(self, aligned: Sequence[Any], sources: Sequence[SourceFace],
                      track_ids: Sequence[int]) -> list[Any]:
        """One swapper call per distinct source (one call in all when faces are not
        mapped); crops come back in face order. The track ids let the processor reuse
        each face's own parsing mask."""
        out: list[Any] = [None] * len(aligned)
        groups: dict[str, list[int]] = {}
        for i, src in enumerate(sources):
            groups.setdefault(src.name, []).append(i)
        for indices in groups.values():
            crops = self.processor.swap_crops([aligned[i] for i in indices],
                                              sources[indices[0]],
                                              tracks=[track_ids[i] for i in indices])
            for i, crop in zip(indices, crops, strict=True):
                out[i] = crop
        return out

    def _embed_map_photos(self) -> None:
        """The map's entry photos (``match:REF``) not embedded yet; a photo without a
        usable face is reported once and matches nobody (the stream goes on)."""
        encoder = self.processor.encoder
        face_map = self.face_map
        if face_map is None:
            return
        for photo in face_map.photos_to_embed():
            if encoder is None:
                face_map.photo_failed(photo, "needs an identity encoder; the model has none")
                continue
            try:
                face_map.add_photo_vector(photo, photo_vector(photo, self._locked_detect,
                                                              encoder.identify))
            except (OSError, ValueError) as exc:
                log.error("faces match: %s", exc)
                face_map.photo_failed(photo, str(exc))

    def _identify_tracks(self, image: np.ndarray,
                         faces: Sequence[tuple[int, np.ndarray]]) -> None:
        """Each track's own recognition vector, matched by the face map (once per track)."""
        encoder = self.processor.encoder
        face_map = self.face_map
        if encoder is None or face_map is None:
            return
        for track_id, landmarks in faces:
            face_map.observe(track_id, encoder.identify(image, landmarks))

    def _measure(self, job: _SwapJob, crops: Sequence[Any],
                 sources: Sequence[SourceFace]) -> None:
        meter = self.meter
        if meter is None or not self._settings.quality_meter or not meter.due():
            return
        meter.mark()
        for i, (track_id, crop, src) in enumerate(zip(job.track_ids, crops, sources,
                                                      strict=True)):
            if i >= len(job.landmarks):
                continue
            aligned = job.aligned[i]
            matrix = np.asarray(aligned.matrix, dtype=np.float64)
            points = job.landmarks[i].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
            try:
                meter.measure(track_id, _host_crop(aligned), _host_crop(crop), points, src)
            except (ValueError, OSError) as exc:  # a bad source photo: no number, no stop
                log.warning("identity meter: %s", exc)

    def _note_swap(self, ms: float) -> None:
        self.stats_recorder.add_stage("swap", ms)
        self.stats_recorder.tick("swap")
        self._swap_ms = ms if self._swap_ms is None else 0.7 * self._swap_ms + 0.3 * ms

    def _choose_mode(self, settings: Settings) -> str:
        if settings.swap_mode != "auto":
            return settings.swap_mode
        fps = self.stats_recorder.rate("in") or float(getattr(self.source, "fps", 0) or 30.0)
        interval_ms = 1000.0 / max(fps, 1.0)
        if self._swap_ms is None:
            return self._mode
        if self._mode == "sync" and self._swap_ms > ASYNC_ABOVE * interval_ms:
            log.info("swap takes %.0f ms per frame of %.0f ms: swapping asynchronously",
                     self._swap_ms, interval_ms)
            return "async"
        if self._mode == "async" and self._swap_ms < SYNC_BELOW * interval_ms:
            log.info("swap takes %.0f ms per frame of %.0f ms: swapping every frame",
                     self._swap_ms, interval_ms)
            return "sync"
        return self._mode

    def _process_loop(self) -> None:
        while not self._stop.is_set():
            frame = self.captured.get(timeout=0.1)
            if frame is None:
                continue
            result = self._process(frame)
            self.output.put(result)
            self.preview_slot.put(result)
            self.stats_recorder.tick("processed")

    def _detect_step(
        self, frame: Frame, grey: np.ndarray, timings: dict[str, float]
    ) -> tuple[list[Detection] | None, np.ndarray | None]:
        """Run (sync) or collect/submit (worker) a detection; returns detections and the
        grey image of the frame they belong to (``None``: this frame)."""
        if not self._detect_in_worker:
            if not self.tracker.needs_detection():
                return None, None
            t0 = time.perf_counter()
            with self._detector_lock:
                detections = list(self.detector.detect(frame.image))
            timings["detect"] = _ms(t0)
            return detections, None
        done = self._detect.results.get(timeout=0)
        if done is None and not self._detect.busy and self.tracker.needs_detection():
            # The worker always takes the newest job; tracking carries faces meanwhile.
            self._detect.submit(_DetectJob(frame.image, grey))
        return (None, None) if done is None else (done[0], done[1])

    def _process(self, frame: Frame) -> SwapResult:
        settings = self._settings
        controls = self._controls
        if self.processor.settings is not settings:
            self.processor.update_settings(settings)
        self.tracker.detect_every = max(1, settings.detect_every)
        timings: dict[str, float] = {}

        t0 = time.perf_counter()
        grey = self.tracker.prepare(frame.image)
        track_ms = _ms(t0)
        detections, detected_grey = self._detect_step(frame, grey, timings)
        t0 = time.perf_counter()
        faces = self.tracker.update(frame.image, frame.captured_ns / 1e9, detections,
                                    grey=grey, detected_grey=detected_grey)
        timings["track"] = track_ms + _ms(t0)
        self._faces = len(faces)
        live_ids = {t.track_id for t in self.tracker.tracks}
        self.textures.retain(live_ids)
        self.motion.retain(live_ids)

        source_faces = self._source_faces()
        active = None
        if source_faces:
            active = source_faces[min(controls.source_index, len(source_faces) - 1)]
        view = NO_MAP
        if self.face_map is not None:
            self.face_map.forget_tracks(live_ids)
            view = self.face_map.view(f.track_id for f in faces)
        plan = plan_faces(faces, mode=settings.faces, max_faces=settings.max_faces,
                          active=active, sources=source_faces, face_map=view,
                          only_track=controls.track_id)
        pending = tuple((f.track_id, f.landmarks) for f in plan.identify)
        image, swapped, source_name, submitted = frame.image, False, None, False
        if controls.swap_enabled and plan.faces:
            t0 = time.perf_counter()
            aligned = self.processor.align(frame.image, plan.faces)
            timings["align"] = _ms(t0)
            self._mode = self._choose_mode(settings)
            job = _SwapJob(frame.index, plan.track_ids, tuple(aligned), plan.sources,
                           image=frame.image, landmarks=tuple(f.landmarks for f in plan.faces),
                           identify=pending)
            if self._mode == "sync":
                pairs, submitted = self._swap_now(job, timings, settings)
                names = {s.name for s in plan.sources}
            else:
                if not self._swap.busy:
                    self._swap.submit(self._next_refresh(job))
                    submitted = True
                pairs, names = self._newest_textures(plan, aligned, view.active, settings,
                                                     timings)
            source_name = next(iter(names)) if len(names) == 1 else None
            if pairs:
                t0 = time.perf_counter()
                image = self.processor.composite(
                    frame.image, [p[0] for p in pairs], [p[1] for p in pairs]
                )
                timings["composite"] = _ms(t0)
                swapped = True
        if pending and not submitted and not self._swap.busy:
            self._swap.submit(_SwapJob(frame.index, (), (), image=frame.image, crops=(),
                                       identify=pending))
        self._last_source_name = source_name if swapped else None
        self.stats_recorder.add_stages(timings)
        return SwapResult(frame, image, tuple(faces), StageTimings(timings), swapped,
                          source_name if swapped else None)

    def _swap_now(self, job: _SwapJob, timings: dict[str, float],
                  settings: Settings) -> tuple[list[tuple[Any, Any]], bool]:
        """Sync mode: swap every planned face on this thread; the idle worker measures
        them (and embeds new tracks) when due. Returns the (aligned, crop) pairs."""
        t0 = time.perf_counter()
        crops = self._swap_grouped(job.aligned, job.sources, job.track_ids)
        timings["swap"] = _ms(t0)
        self._note_swap(timings["swap"])
        self._store_textures(job.frame_index, job.track_ids, job.aligned, crops, job.sources)
        submitted = False
        if (job.identify or self._meter_due(settings)) and not self._swap.busy:
            self._swap.submit(replace(job, crops=tuple(crops)))
            submitted = True
        return list(zip(job.aligned, crops, strict=True)), submitted

    def _next_refresh(self, job: _SwapJob) -> _SwapJob:
        """Async mode: the worker swaps the face that most needs it (no texture yet, then
        the stalest), so N faces share a slow swapper fairly. A processor that swaps a
        batch for the price of one face (``batch_swaps``) takes them all."""
        if getattr(self.processor, "batch_swaps", False) or len(job.track_ids) <= 1:
            return job
        first = self.textures.refresh_order(job.track_ids, [s.name for s in job.sources])[0]
        return replace(job, track_ids=(job.track_ids[first],),
                       aligned=(job.aligned[first],), sources=(job.sources[first],),
                       landmarks=job.landmarks[first:first + 1])

    def _newest_textures(self, plan: FacePlan, aligned: Sequence[Any], mapped: bool,
                         settings: Settings, timings: dict[str, float],
                         ) -> tuple[list[tuple[Any, Any]], set[str]]:
        """Async mode: each planned face's newest texture, following the face's own
        motion since it was swapped when the texture mode says so."""
        mode = texture_mode_in_effect(settings.texture, asynchronous=True)
        pairs: list[tuple[Any, Any]] = []
        names: set[str] = set()
        t0 = time.perf_counter()
        for face, now, src in zip(plan.faces, aligned, plan.sources, strict=True):
            texture = self.textures.for_face(face.track_id, src.name, mapped)
            if texture is None:
                continue
            crop = self.motion.follow(face.track_id, texture, now, mode=mode,
                                      live_mouth=settings.live_mouth, landmarks=face.landmarks)
            pairs.append((now, crop))
            names.add(texture.source_name)
        if (mode != "static" or settings.live_mouth) and pairs:
            timings["texture"] = _ms(t0)
        return pairs, names

    def _meter_due(self, settings: Settings) -> bool:
        return self.meter is not None and settings.quality_meter and self.meter.due()

    # ----------------------------------------------------------------- output
    def _output_loop(self) -> None:
        while not self._stop.is_set():
            result = self.output.get(timeout=0.1)
            if result is None:
                continue
            t0 = time.perf_counter()
            for sink in self.sinks:
                sink.send(result.image, result.frame.captured_ns)
            self.stats_recorder.add_stage("sink", _ms(t0))
            self.stats_recorder.add_latency((time.monotonic_ns() - result.frame.captured_ns) / 1e6)
            self.stats_recorder.tick("out")
