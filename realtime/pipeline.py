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
counted, so latency is bounded by construction. The process thread tracks faces
(:mod:`realtime.faces.track`), asks :func:`realtime.faces.plan.plan_faces` who wears what,
aligns, and either swaps synchronously or, when the swapper is slower than the camera,
pastes each track's newest texture (``frame.textures``, ``frame.motion``, ``frame.fade``,
``frame.hold``) while the swap worker refreshes the face ``frame.refresh`` picks (no face
policy lives here). Each thread owns its CUDA stream (``frame.streams``).

The owner stops what it starts: :meth:`Pipeline.stop` sets an Event, closes the slots to
wake waiters, and joins threads in reverse order under one deadline. A worker's exception
stops the pipeline, kept as :class:`WorkerError` for :meth:`Pipeline.check`/:meth:`stop`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from realtime.config import Settings
from realtime.faces.detect import retune_detector
from realtime.faces.mapping import NO_MAP, map_needed
from realtime.faces.plan import plan_faces
from realtime.faces.track import FaceTracker
from realtime.frame.fade import FadingMotion
from realtime.frame.handoff import on_device, receive, swap_on_frame, swap_on_worker
from realtime.frame.hold import HeldFaces
from realtime.frame.memory_guard import MemoryFallback, unswapped
from realtime.frame.metering import measure_swaps
from realtime.frame.motion import texture_mode_in_effect, textures_for_frame
from realtime.frame.refresh import RefreshPlanner, plain_misfit_wanted
from realtime.frame.schedule import SWAP_MODES, SwapClock
from realtime.frame.streams import own_stream, written
from realtime.frame.swap_timing import SwapTimer
from realtime.frame.textures import TextureStore
from realtime.io.outputs import sink_drops, start_sinks
from realtime.io.reading import SourceReader
from realtime.slot import LatestSlot
from realtime.stats import PipelineStats, StatsRecorder, meter_fields
from realtime.types import Detection, Frame, SourceFace, StageTimings, SwapResult
from realtime.worker import Worker, WorkerError, cancel_model_call, close_in_parallel

if TYPE_CHECKING:
    from realtime.faces.detect import FaceDetector
    from realtime.faces.mapping import FaceMap
    from realtime.faces.quality import FaceQuality, QualityMeter
    from realtime.frame.process import FaceProcessor
    from realtime.io.capture import FrameSource
    from realtime.io.sinks import FrameSink

log = logging.getLogger(__name__)

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
    ready: Any = None  # CUDA event after the aligned (and swapped) crops were written


@dataclass(frozen=True)
class _DetectJob:
    image: np.ndarray
    grey: np.ndarray


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


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
        self.processor, self.memory = processor, MemoryFallback(processor)  # OOM: step down
        self.detector = detector
        self._sources = sources
        self.sinks = tuple(sinks)
        self._settings = settings
        self._detect_in_worker = detect_in_worker
        self.tracker = tracker or FaceTracker(detect_every=settings.detect_every)
        self._reader = SourceReader(source, reconnect_backoff)

        self._lock = threading.Lock()
        # dlib's detector is not thread-safe: the workers and the meter share it.
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
        self._swap: Worker[_SwapJob, None] = Worker(
            "swap", self.memory.wrap(self._run_swap, lambda: None), nice=swap_worker_nice)
        self.textures = TextureStore()
        self.motion = FadingMotion(lambda: self._settings.fade_ms / 1000.0,
                                   measure_static=lambda: plain_misfit_wanted(self._settings))
        self.refresh, self.held = RefreshPlanner(), HeldFaces()
        self._clock = SwapClock(settings.swap_mode)
        self._timer = SwapTimer(on_device(processor))  # GPU time on the device path
        self._faces = 0
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
        for state in (self.textures.clear, self.motion.reset, self.held.reset):
            state()
        self.source.open()
        self._reader.state = "running"
        self.sink_errors = start_sinks(self.sinks)
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
        if self._threads:  # a model call in progress (seconds on a CPU) ends now
            self._cancelled = cancel_model_call(self.processor)
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
        closers = [*(s.stop for s in reversed(self.sinks)), self.source.close]
        if not close_in_parallel(closers, deadline):
            log.warning("a sink or the source did not close within %.1f s", timeout)
        self._reader.state = "stopped"
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
            self._controls = replace(self._controls, source_index=index)

    def next_source(self) -> int:
        return self._step_source(+1)

    def previous_source(self) -> int:
        return self._step_source(-1)

    def _step_source(self, step: int) -> int:
        count = len(self._source_faces())
        with self._lock:
            index = (self._controls.source_index + step) % max(count, 1)
            self._controls = replace(self._controls, source_index=index)
        return index

    @property
    def source_index(self) -> int:
        return self._controls.source_index

    def set_swap_enabled(self, enabled: bool) -> None:
        with self._lock:
            self._controls = replace(self._controls, swap_enabled=bool(enabled))

    def select_track(self, track_id: int | None) -> None:
        """Swap only the face with this track id (``None``: back to ``settings.faces``)."""
        with self._lock:
            self._controls = replace(self._controls, track_id=track_id)

    def assign_face(self, track_id: int, source_name: str | None) -> None:
        """The person on ``track_id`` wears ``source_name`` (None: the assignment ends; the
        map's special names: the active source / never swapped), followed through tracking
        and re-identified after a loss (``FaceMap.assign_track``)."""
        face_map = self._ensure_map()
        if source_name is None:
            face_map.unassign_track(track_id)
        else:
            face_map.assign_track(track_id, source_name)

    def face_assignments(self) -> dict[int, str]:
        """Track id → the source name it wears, for the faces a map assigns."""
        if self.face_map is None or not self.face_map.active:
            return {}
        return self.face_map.worn(t.track_id for t in self.tracker.tracks)

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
        if (settings.detect_width, settings.det_threshold) != (old.detect_width,
                                                               old.det_threshold):
            retune_detector(self.detector, settings.detect_width, settings.det_threshold)
        if settings.faces != old.faces or settings.unassigned_faces != old.unassigned_faces:
            self._follow_faces_mode(settings, settings.unassigned_faces)

    def _ensure_map(self) -> FaceMap:
        if self.face_map is None:
            from realtime.faces.mapping import FaceMap

            self.face_map = FaceMap(threshold=self._settings.match_threshold,
                                    unassigned=self._settings.unassigned_faces)
        return self.face_map

    def _follow_faces_mode(self, settings: Settings, unassigned: str | None = None) -> None:
        """The faces mode's person (``match``) is a face-map entry, embedded on the worker."""
        if self.face_map is None and map_needed(settings.faces):
            self._ensure_map()
        if self.face_map is not None:
            self.face_map.follow_settings(settings.faces, unassigned)

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def swap_mode(self) -> str:
        """The mode in effect now: ``"sync"`` or ``"async"``."""
        return self._clock.mode

    # --------------------------------------------------------------- output
    def preview(self) -> tuple[int, SwapResult | None]:
        """``(version, newest result)``; redraw only when the version changed."""
        return self.preview_slot.latest()

    def stats(self) -> PipelineStats:
        quality = self.meter.summary() if self.meter and self._settings.quality_meter else None
        drops = {"capture": self.captured.drops, "output": self.output.drops,
                 **sink_drops(self.sinks)}
        return self.stats_recorder.snapshot(
            drops=drops,
            # a lost or ended source shows no faces (not the last frame's count)
            faces=0 if self._reader.state in ("reconnecting", "ended") else self._faces,
            swap_mode=self._clock.mode,
            source_name=self._last_source_name,
            # a source that reconnects by itself (camera) knows its state best
            source_state=str(getattr(self.source, "state", None) or self._reader.state)
            if self.running else self._reader.state,
            reconnects=self._reader.reconnects,
            error=None if self._error is None else str(self._error),
            texture_fallbacks=self.motion.fallbacks, memory_notice=self.memory.notice,
            **meter_fields(quality),
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
            with own_stream():  # this thread's CUDA stream, never the shared default one
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

    # ---------------------------------------------------------------- capture
    def _capture_loop(self) -> None:
        self._reader.run(self._stop, self._deliver)

    def _deliver(self, frame: Frame) -> None:
        self.stats_recorder.add_stage("capture", max(0.0, (time.monotonic_ns()
                                                           - frame.captured_ns) / 1e6))
        self.stats_recorder.tick("in")
        self.captured.put(frame)

    # ---------------------------------------------------------------- process
    def _run_detect(self, job: _DetectJob) -> tuple[list[Detection], np.ndarray]:
        t0 = time.perf_counter()
        detections = self._locked_detect(job.image)
        self.stats_recorder.add_stage("detect", _ms(t0))
        return detections, job.grey

    def _locked_detect(self, image: np.ndarray) -> list[Detection]:
        with self._detector_lock:
            return list(self.detector.detect(image))

    def _run_swap(self, job: _SwapJob) -> None:
        """The swap worker: embed the map's new faces, swap (unless done), measure if due."""
        if self.face_map is not None:
            self.face_map.embed_photos(self._locked_detect, self.processor.encoder)
            if job.identify and job.image is not None:
                self.face_map.identify(job.image, job.identify, self.processor.encoder)
        receive(job)
        if job.crops is None:
            crops = swap_on_worker(self.processor, self.textures, self._timer, job)
            self._note_swaps()
        else:
            crops = list(job.crops)
        self._measure(job, crops)

    def _measure(self, job: _SwapJob, crops: Sequence[Any]) -> None:
        meter = self.meter
        if meter is None or not self._settings.quality_meter or not meter.due():
            return
        meter.mark()
        measure_swaps(meter, job.track_ids, job.aligned, crops, job.landmarks, job.sources)

    def _note_swaps(self) -> None:  # the swaps timed by now (GPU: their end event done)
        for ms in self._timer.done():
            self.stats_recorder.add_stage("swap", ms)
            self.stats_recorder.tick("swap")
            self._clock.note(ms)

    def _process_loop(self) -> None:
        while not self._stop.is_set():
            frame = self.captured.get(timeout=0.1)
            if frame is None:
                continue
            result = self.memory.run(self._process, frame, fallback=unswapped(frame))
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
            detections = self._locked_detect(frame.image)
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
        for part in (self.textures, self.motion, self.refresh):
            part.retain(live_ids)

        source_faces = self._source_faces()
        active = source_faces[min(controls.source_index, len(source_faces) - 1)] \
            if source_faces else None
        view = NO_MAP
        if self.face_map is not None:
            self.face_map.forget_tracks(live_ids)
            view = self.face_map.view(f.track_id for f in faces)
        plan = plan_faces(faces, mode=settings.faces, max_faces=settings.max_faces,
                          active=active, sources=source_faces, face_map=view,
                          only_track=controls.track_id)
        pending = tuple((f.track_id, f.landmarks) for f in plan.identify)
        image, submitted = frame.image, False
        pairs, names = list[tuple[Any, Any]](), set[str]()
        texture_mode = texture_mode_in_effect(settings.texture, asynchronous=True)
        if controls.swap_enabled and plan.faces:
            t0 = time.perf_counter()
            aligned = self.processor.align(frame.image, plan.faces)
            timings["align"] = _ms(t0)
            fps = self.stats_recorder.rate("in") or float(getattr(self.source, "fps", 0) or 30)
            mode = self._clock.choose(settings.swap_mode, fps)
            job = _SwapJob(frame.index, plan.track_ids, tuple(aligned), plan.sources,
                           image=frame.image, landmarks=tuple(f.landmarks for f in plan.faces),
                           identify=pending, ready=written())
            if mode == "sync":
                pairs, submitted = self._swap_now(job, timings, settings)
                names = {s.name for s in plan.sources}
            else:  # the next face is picked after this frame measured each texture's fit
                t0 = time.perf_counter()
                pairs, names = textures_for_frame(
                    self.textures, self.motion, plan, aligned, mapped=view.active,
                    mode=texture_mode, live_mouth=settings.live_mouth, image=frame.image)
                timings["texture"] = _ms(t0)
                if not self._swap.busy:
                    self._swap.submit(self._next_refresh(job, settings, texture_mode))
                    submitted = True
        if controls.swap_enabled:  # faces lost a moment ago keep their texture
            pairs += self.held.pairs(self.tracker.tracks, frame, self.textures, self.processor)
        source_name = next(iter(names)) if len(names) == 1 else None
        swapped = bool(pairs)
        if swapped:
            t0 = time.perf_counter()
            image = self.processor.composite(frame.image, [p[0] for p in pairs],
                                             [p[1] for p in pairs])
            timings["composite"] = _ms(t0)
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
        crops = swap_on_frame(self.processor, self.textures, self._timer, job)
        if not self._timer.on_device:  # on the GPU: its events' time (_note_swaps), not the launch
            timings["swap"] = _ms(t0)
        self._note_swaps()
        meter_due = self.meter is not None and settings.quality_meter and self.meter.due()
        submitted = bool(job.identify or meter_due) and not self._swap.busy
        if submitted:
            self._swap.submit(replace(job, crops=tuple(crops), ready=written()))
        return list(zip(job.aligned, crops, strict=True)), submitted

    def _next_refresh(self, job: _SwapJob, settings: Settings, texture_mode: str) -> _SwapJob:
        """Async mode: the face ``frame.refresh`` picks (all of them for a batch swapper)."""
        if getattr(self.processor, "batch_swaps", False) or len(job.track_ids) <= 1:
            return job
        i = self.refresh.pick(self.textures, job.track_ids, job.sources, job.aligned,
                              self.motion.unexplained, settings, texture_mode)
        return replace(job, track_ids=job.track_ids[i:i + 1], aligned=job.aligned[i:i + 1],
                       sources=job.sources[i:i + 1], landmarks=job.landmarks[i:i + 1])

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
