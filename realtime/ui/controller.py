"""The one adapter between the window and the live pipeline.

Everything the UI knows about ``realtime.pipeline``, ``capture``, ``sinks``, ``sources``,
``swap`` and ``engines`` goes through this module, so an API change there is fixed here.
Methods fall in two groups: *heavy* ones (``build``, ``add_source`` ...) run on a worker
thread, never on the GUI thread; *light* ones (``select_source``, ``preview``, ``stats``)
are thread-safe and cheap enough for a key press or a timer tick.

Sinks that the user switches on and off while running (virtual camera, recorder) hang
off one ``SinkSwitch`` handed to the pipeline once, so toggling them never rebuilds it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from realtime.config import Settings
from realtime.stats import PipelineStats
from realtime.types import SourceFace, SwapResult

log = logging.getLogger(__name__)

# The identity encoder each swapper needs: a missing one is as fatal as the swapper.
REQUIRED_MODELS: dict[str, tuple[str, ...]] = {
    "simswap-224": ("simswap-224", "arcface-simswap"),
    "simswap-512": ("simswap-512", "arcface-simswap"),
    "inswapper-128": ("inswapper-128", "arcface-w600k"),
}
# Settings whose change needs a new pipeline (models, input); the rest go live.
REBUILD_FIELDS: tuple[str, ...] = (
    "model", "engine", "detector", "camera", "camera_width", "camera_height", "camera_fps",
    "swap_mode", "mask",
)


class ModelsMissing(RuntimeError):
    """The chosen model (or its identity encoder) is not installed; ``names`` lists them."""

    def __init__(self, model: str, names: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(names)
        super().__init__(
            f"{model} needs model files that are not installed: {', '.join(self.names)}"
        )


class NotRunning(RuntimeError):
    """A source was edited while no pipeline exists (it is retried after the next build)."""


class Sink(Protocol):
    def start(self) -> None: ...
    def send(self, image: np.ndarray, captured_ns: int) -> None: ...
    def stop(self) -> None: ...
    def describe(self) -> str: ...


class PipelineLike(Protocol):
    @property
    def source_index(self) -> int: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 1.0, *, raise_error: bool = True) -> None: ...
    def select_source(self, index: int) -> None: ...
    def set_swap_enabled(self, enabled: bool) -> None: ...
    def update_settings(self, settings: Settings) -> None: ...
    def stats(self) -> PipelineStats: ...
    def preview(self) -> tuple[int, SwapResult | None]: ...


class BankLike(Protocol):
    @property
    def sources(self) -> tuple[SourceFace, ...]: ...
    def add(self, paths: Sequence[Path], name: str | None = None) -> SourceFace: ...
    def remove(self, index: int) -> SourceFace: ...
    def rename(self, index: int, name: str) -> SourceFace: ...


@dataclass
class Runtime:
    """What one build made: the running graph and the parts the UI reports on."""

    pipeline: PipelineLike
    bank: BankLike
    backend: str  # the engine the swapper runs on, e.g. "onnxruntime-cpu"
    input_description: str
    closers: list[Callable[[], None]] = field(default_factory=list)
    preview_only: bool = False  # the camera without models (camera_runtime)


BuildFn = Callable[[Settings, Path, Path, Sink], Runtime]
SinkFactory = Callable[[Settings, int, int], Sink]
RecorderFactory = Callable[[Path, int, int, float], Sink]


class SinkSwitch:
    """A ``FrameSink`` that forwards to the sinks currently switched on.

    A child that raises is detached and stopped; its error is kept for the UI
    (``take_errors``) instead of killing the pipeline's output thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, Sink] = {}
        self._errors: list[str] = []
        self.last_size: tuple[int, int] | None = None  # (width, height) of the last frame

    def start(self) -> None:
        return None

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        self.last_size = (int(image.shape[1]), int(image.shape[0]))
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            try:
                child.send(image, captured_ns)
            except Exception as exc:
                log.exception("%s failed", child.describe())
                self.detach(key)
                with self._lock:
                    self._errors.append(f"{key} stopped: {exc}")

    def stop(self) -> None:
        for key in list(self._children):
            self.detach(key)

    def describe(self) -> str:
        with self._lock:
            return "outputs: " + (", ".join(c.describe() for c in self._children.values())
                                  or "none")

    def attach(self, key: str, sink: Sink) -> None:
        """Start ``sink`` and forward frames to it (replacing any sink under ``key``)."""
        sink.start()
        self.detach(key)
        with self._lock:
            self._children[key] = sink

    def detach(self, key: str) -> bool:
        with self._lock:
            child = self._children.pop(key, None)
        if child is None:
            return False
        try:
            child.stop()
        except Exception:
            log.exception("stopping %s failed", key)
        return True

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._children

    def take_errors(self) -> list[str]:
        """Errors since the last call; a child whose ``error`` is set is detached."""
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            error = getattr(child, "error", None)
            if error is not None:
                self.detach(key)
                with self._lock:
                    self._errors.append(f"{key} stopped: {error}")
        with self._lock:
            errors, self._errors = self._errors, []
        return errors


def missing_models(models_dir: Path, model: str) -> list[str]:
    """Names among ``model``'s required files that are not usable in ``models_dir``."""
    from engines import models

    needed = REQUIRED_MODELS.get(model, (model,))
    return [name for name in needed if models.model_status(models_dir, name) in ("missing",
                                                                                  "corrupt")]


def build_runtime(settings: Settings, models_dir: Path, cache_dir: Path, sink: Sink) -> Runtime:
    """The real graph from the real modules (the only place that names them)."""
    from realtime.faces.detect import make_detector
    from realtime.faces.identity import load_encoder
    from realtime.faces.sources import SourceBank
    from realtime.frame.swap import load_swapper
    from realtime.io.capture import open_source
    from realtime.pipeline import Pipeline
    from realtime.session import choose_processor, live_threads, make_live_detector

    missing = missing_models(models_dir, settings.model)
    if missing:
        raise ModelsMissing(settings.model, missing)
    closers: list[Callable[[], None]] = []
    # the same CPU budget as ``swapcam live``: one core left for the frame threads
    threads = live_threads()
    swapper = load_swapper(settings.model, models_dir, engine=settings.engine, threads=threads)
    closers.append(swapper.close)
    encoders = {settings.model: load_encoder(settings.model, models_dir, engine=settings.engine,
                                             threads=threads)}
    closers.append(encoders[settings.model].close)
    lock = threading.Lock()

    def encoder_for(family: str) -> Any:
        with lock:
            if family not in encoders:
                encoders[family] = load_encoder(family, models_dir, engine=settings.engine,
                                                threads=threads)
                closers.append(encoders[family].close)
            return encoders[family]

    # frames get the live tuning (as ``swapcam live``), photos the detector's defaults
    detector = make_live_detector(settings, models_dir, threads=threads)
    from realtime.frame.parsing import load_mask_parser

    parser = load_mask_parser(settings.mask, models_dir, engine=settings.engine,
                              threads=threads)
    if parser is not None:
        closers.append(parser.close)
    processor = choose_processor(swapper, encoders[settings.model], settings, parser)
    # The bank detects on the source worker while the pipeline detects on its own
    # thread: dlib is not thread-safe (a shared instance aborts the process), so the
    # bank gets a detector of its own.
    bank_detector = make_detector(settings.detector, models_dir, engine=settings.engine,
                                  threshold=settings.det_threshold)
    bank = SourceBank(encoder_for, bank_detector, cache_dir / "sources",
                      families=(settings.model,))
    is_camera = settings.camera.strip().isdigit() or settings.camera.startswith("/dev/")
    # a file plays at its own rate; the fps box is a camera request
    frame_source = open_source(settings.camera, width=settings.camera_width,
                               height=settings.camera_height,
                               fps=settings.camera_fps if is_camera else None)
    from realtime.session import make_face_map, make_meter

    face_map = make_face_map(settings, bank, encoders[settings.model], bank_detector)
    meter = make_meter(settings, models_dir)
    if meter is not None:
        closers.append(meter.encoder.close)
    pipeline = Pipeline(frame_source, processor, detector, bank, [sink], settings,
                        face_map=face_map, meter=meter)
    return Runtime(pipeline=pipeline, bank=bank, backend=str(swapper.backend),
                   input_description=frame_source.describe(), closers=closers)


class NoFaces:
    """The camera-only preview's detector: it looks for nothing (no model is loaded)."""

    name = "none"

    def detect(self, image: np.ndarray) -> list[Any]:
        return []


class NoSources:
    """The camera-only preview's bank: photos wait for the real pipeline."""

    sources: tuple[SourceFace, ...] = ()

    def add(self, paths: Sequence[Path], name: str | None = None) -> SourceFace:
        raise NotRunning("the models are not loaded yet")

    def remove(self, index: int) -> SourceFace:
        raise NotRunning("the models are not loaded yet")

    def rename(self, index: int, name: str) -> SourceFace:
        raise NotRunning("the models are not loaded yet")


def camera_runtime(settings: Settings, sink: Sink) -> Runtime:
    """The camera shown as it is (no detector, no model): what the window runs while
    the models are missing, loading or converting."""
    from realtime.frame.process import FrameProcessor
    from realtime.io.capture import open_source
    from realtime.pipeline import Pipeline
    from realtime.session import PassthroughSwapper

    is_camera = settings.camera.strip().isdigit() or settings.camera.startswith("/dev/")
    frame_source = open_source(settings.camera, width=settings.camera_width,
                               height=settings.camera_height,
                               fps=settings.camera_fps if is_camera else None)
    processor = FrameProcessor(PassthroughSwapper(), None, settings)  # type: ignore[arg-type]
    pipeline = Pipeline(frame_source, processor, NoFaces(), NoSources(), [sink],
                        settings.with_changes(quality_meter=False))
    return Runtime(pipeline=pipeline, bank=NoSources(), backend="camera only",
                   input_description=frame_source.describe(), preview_only=True)


def prepare_models(settings: Settings, models_dir: Path,
                   on_stage: Callable[[str, int, int, str], None] | None) -> None:
    """Convert the model's checkpoints to ONNX now (the first time takes tens of
    seconds), reporting ``on_stage(model, done, total, what)`` for the progress bar."""
    from export.onnx import EXPORTABLE, ensure_onnx

    if settings.model not in REQUIRED_MODELS or missing_models(models_dir, settings.model):
        return  # the build says what is missing (ModelsMissing)
    for name in REQUIRED_MODELS[settings.model]:
        if name in EXPORTABLE:
            callback = None if on_stage is None else (
                lambda done, total, what, name=name: on_stage(name, done, total, what))
            ensure_onnx(models_dir, name, on_stage=callback)


def virtual_camera_sink(settings: Settings, width: int, height: int) -> Sink:
    from realtime.io.sinks import AI_LABEL, VirtualCameraSink

    return VirtualCameraSink(settings.vcam_width or width, settings.vcam_height or height,
                             settings.vcam_fps, label=AI_LABEL if settings.ai_label else None)


def recorder_sink(path: Path, width: int, height: int, fps: float) -> Sink:
    from realtime.io.sinks import RecorderSink

    return RecorderSink(path, width - width % 2, height - height % 2, fps)


class Controller:
    """Owns the pipeline for the window; see the module docstring for the threading rules."""

    def __init__(
        self,
        models_dir: Path,
        cache_dir: Path,
        *,
        build: BuildFn = build_runtime,
        camera_build: Callable[[Settings, Sink], Runtime] = camera_runtime,
        prepare: Callable[..., None] | None = prepare_models,
        vcam_factory: SinkFactory = virtual_camera_sink,
        recorder_factory: RecorderFactory = recorder_sink,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.cache_dir = Path(cache_dir)
        self._build = build
        self._camera_build = camera_build
        self._prepare = prepare
        # on_stage(model, done, total, what) while a checkpoint converts (worker thread)
        self.on_stage: Callable[[str, int, int, str], None] | None = None
        self._camera_key: tuple[Any, ...] | None = None
        self._vcam_factory = vcam_factory
        self._recorder_factory = recorder_factory
        self._lock = threading.RLock()
        self._runtime: Runtime | None = None
        self._switch = SinkSwitch()
        self._active = 0
        self._swap_enabled = True
        self.recording_path: Path | None = None
        self._reported_error: object = None
        self._closed = False

    # -- heavy: call from a worker thread ---------------------------------------

    def show_camera(self, settings: Settings) -> Runtime | None:
        """Run the camera alone (no models) unless it already runs with these camera
        settings, or a full pipeline runs; returns the runtime now running."""
        key = (settings.camera, settings.camera_width, settings.camera_height,
               settings.camera_fps)
        with self._lock:
            current = self._runtime
            if current is not None and (not current.preview_only or self._camera_key == key):
                return current
        runtime = self._camera_build(settings, self._switch)
        return self._replace(runtime, key)

    def build(self, settings: Settings) -> Runtime:
        """Build a pipeline from ``settings`` while the current one (the camera alone, or
        an older pipeline) keeps showing frames, then switch over."""
        if self._prepare is not None:
            self._prepare(settings, self.models_dir, self.on_stage)
        runtime = self._build(settings, self.models_dir, self.cache_dir, self._switch)
        return self._replace(runtime, None)

    def _replace(self, runtime: Runtime, camera_key: tuple[Any, ...] | None) -> Runtime:
        """Stop the running pipeline (it holds the camera) and start ``runtime``."""
        runtime.pipeline.set_swap_enabled(self._swap_enabled)
        with self._lock:
            closed = self._closed
        if not closed:
            self.stop_pipeline()
        with self._lock:
            closed = self._closed
            if not closed:
                runtime.pipeline.start()
                self._runtime = runtime
                self._camera_key = camera_key
        if closed:  # the window closed while the models loaded: start nothing
            for close in reversed(runtime.closers):
                close()
            raise NotRunning("the window closed while the pipeline was being built")
        return runtime

    def add_source(self, paths: Sequence[Path], name: str | None = None) -> SourceFace:
        bank = self._bank()
        face = bank.add([Path(p) for p in paths], name)
        with self._lock:
            if len(bank.sources) == self._active + 1:
                self._apply_active()
        return face

    def remove_source(self, paths: Sequence[str]) -> None:
        bank = self._bank()
        index = self._index_of(bank, paths)
        if index is None:
            return
        bank.remove(index)
        with self._lock:
            count = len(bank.sources)
            if index < self._active or self._active >= count:
                self._active = max(min(self._active - (index < self._active), count - 1), 0)
            self._apply_active()

    def rename_source(self, paths: Sequence[str], name: str) -> SourceFace | None:
        bank = self._bank()
        index = self._index_of(bank, paths)
        return None if index is None else bank.rename(index, name)

    # -- light: safe from the GUI thread ----------------------------------------

    @property
    def running(self) -> bool:
        return self._runtime is not None

    @property
    def swapping(self) -> bool:
        """A pipeline with models runs (not the camera alone)."""
        runtime = self._runtime
        return runtime is not None and not runtime.preview_only

    @property
    def backend(self) -> str:
        runtime = self._runtime
        return runtime.backend if runtime else ""

    @property
    def input_description(self) -> str:
        runtime = self._runtime
        return runtime.input_description if runtime else ""

    @property
    def active_source(self) -> int:
        return self._active

    def source_count(self) -> int:
        runtime = self._runtime
        return len(runtime.bank.sources) if runtime else 0

    def sources(self) -> tuple[SourceFace, ...]:
        runtime = self._runtime
        return runtime.bank.sources if runtime else ()

    def select_source(self, index: int) -> bool:
        """Make source ``index`` (0-based) active; False when there is no such source."""
        with self._lock:
            count = self.source_count()
            if not 0 <= index < count:
                return False
            self._active = index
            self._apply_active()
            return True

    def next_source(self) -> bool:
        count = self.source_count()
        return count > 0 and self.select_source((self._active + 1) % count)

    def previous_source(self) -> bool:
        count = self.source_count()
        return count > 0 and self.select_source((self._active - 1) % count)

    def set_active_hint(self, index: int) -> None:
        """Remember the active source before the sources exist (restored settings)."""
        self._active = max(index, 0)

    def set_swap_enabled(self, enabled: bool) -> None:
        self._swap_enabled = enabled
        runtime = self._runtime
        if runtime:
            runtime.pipeline.set_swap_enabled(enabled)

    def update_settings(self, settings: Settings) -> None:
        runtime = self._runtime
        if runtime:
            runtime.pipeline.update_settings(settings)

    def set_virtual_camera(self, on: bool, settings: Settings) -> str:
        """Switch the virtual camera; returns its description. Raises when unavailable."""
        if not on:
            self._switch.detach("virtual camera")
            return "off"
        width, height = self._frame_size(settings)
        sink = self._vcam_factory(settings, width, height)
        self._switch.attach("virtual camera", sink)
        return sink.describe()

    @property
    def virtual_camera_on(self) -> bool:
        return self._switch.has("virtual camera")

    def start_recording(self, folder: Path, settings: Settings, path: Path | None = None) -> Path:
        """Record to ``path`` or to a new time-stamped file in ``folder``."""
        if path is None:
            path = folder / time.strftime("swapcam-%Y%m%d-%H%M%S.mkv")
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = self._frame_size(settings)
        self._switch.attach("recorder", self._recorder_factory(path, width, height,
                                                               settings.camera_fps))
        self.recording_path = path
        return path

    def stop_recording(self) -> Path | None:
        path, self.recording_path = self.recording_path, None
        self._switch.detach("recorder")
        return path

    @property
    def recording(self) -> bool:
        return self._switch.has("recorder")

    def preview(self) -> tuple[int, SwapResult | None]:
        runtime = self._runtime
        return runtime.pipeline.preview() if runtime else (-1, None)

    def stats(self) -> PipelineStats | None:
        runtime = self._runtime
        return runtime.pipeline.stats() if runtime else None

    def face_scores(self) -> dict[int, str]:
        """Track id → the meter's badge text (identity 0–100), for the preview only."""
        from realtime.faces.quality import meter_score

        runtime = self._runtime
        quality = getattr(runtime.pipeline, "face_quality", None) if runtime else None
        if quality is None:
            return {}
        return {tid: f"ID {meter_score(q.identity)}" for tid, q in quality().items()}

    def assign_face(self, track_id: int, choice: str | None) -> bool:
        """The person on ``track_id`` wears ``choice``: a source name, ``ACTIVE_SOURCE`` or
        ``LEAVE_ALONE`` (None: forget the assignment). False when nothing runs that maps
        faces (the camera alone)."""
        runtime = self._runtime
        assign = getattr(runtime.pipeline, "assign_face", None) if runtime else None
        if assign is None or (runtime is not None and runtime.preview_only):
            return False
        assign(track_id, choice)
        return True

    def face_assignments(self) -> dict[int, str]:
        """Track id → what the face wears by assignment (only assigned faces)."""
        runtime = self._runtime
        assigned = getattr(runtime.pipeline, "face_assignments", None) if runtime else None
        return dict(assigned()) if assigned is not None else {}

    def face_badges(self) -> dict[int, str]:
        """Track id → the preview's badge: the meter's score and the face's assignment,
        e.g. ``"ID 63 · Alice"`` (the preview only: frames never carry it)."""
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        labels = {ACTIVE_SOURCE: "active source", LEAVE_ALONE: "left alone"}
        badges = self.face_scores()
        for tid, name in self.face_assignments().items():
            label = labels.get(name, name)
            badges[tid] = f"{badges[tid]} · {label}" if tid in badges else label
        return badges

    def take_errors(self) -> list[str]:
        """New errors from the pipeline's workers and from the outputs, as readable text."""
        errors = self._switch.take_errors()
        runtime = self._runtime
        if runtime is not None:
            error = getattr(runtime.pipeline, "error", None)
            if callable(error):
                error = error()
            # the pipeline keeps its error: report each one once
            if error is not None and error is not self._reported_error:
                self._reported_error = error
                errors.append(_error_text(error))
        return errors

    def stop_pipeline(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        try:
            runtime.pipeline.stop(timeout=2.0, raise_error=False)
        except Exception:  # already shown to the user through take_errors
            log.exception("stopping the pipeline failed")
        for close in reversed(runtime.closers):
            try:
                close()
            except Exception:
                log.exception("closing a model failed")

    def shutdown(self) -> None:
        """Stop outputs first (they flush), then the pipeline's threads; no new builds."""
        with self._lock:
            self._closed = True
        self._switch.stop()
        self.recording_path = None
        self.stop_pipeline()

    # -- internals ----------------------------------------------------------------

    def _frame_size(self, settings: Settings) -> tuple[int, int]:
        """(width, height) of the frames going out: last sent, newest preview, or asked."""
        if self._switch.last_size is not None:
            return self._switch.last_size
        _version, result = self.preview()
        if result is not None:
            return int(result.image.shape[1]), int(result.image.shape[0])
        return settings.camera_width, settings.camera_height

    def _bank(self) -> BankLike:
        runtime = self._runtime
        if runtime is None:
            raise NotRunning("the pipeline is not running yet")
        return runtime.bank

    @staticmethod
    def _index_of(bank: BankLike, paths: Sequence[str]) -> int | None:
        wanted = tuple(str(p) for p in paths)
        for i, face in enumerate(bank.sources):
            if tuple(face.paths) == wanted:
                return i
        return None

    def _apply_active(self) -> None:
        runtime = self._runtime
        if runtime and 0 <= self._active < len(runtime.bank.sources):
            runtime.pipeline.select_source(self._active)


def _error_text(error: Any) -> str:
    """A pipeline error (exception, traceback text, or an error record) as one message."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    message = getattr(error, "message", None)
    return str(message) if message else str(error)


# -- models and engines (engines.models / engines.registry) ---------------------------

def model_state(models_dir: Path, name: str) -> str:
    """"installed", "missing" or "corrupt" (the model table says which file is whose)."""
    from engines import models

    status = models.model_status(models_dir, name)
    return "installed" if status in ("present", "verified") else str(status)


def installed_swappers(models_dir: Path) -> list[str]:
    """Swapper models whose files (and identity encoder's) are all installed."""
    try:
        return [name for name in REQUIRED_MODELS
                if all(model_state(models_dir, n) == "installed" for n in REQUIRED_MODELS[name])]
    except ImportError:
        return []


def describe_model(name: str, state: str = "") -> str:
    """Rich text for the model dialog: title, licence (link), size, state."""
    from html import escape

    try:
        from engines.models import MODELS
    except ImportError:
        return f"<b>{escape(name)}</b>"
    info = MODELS.get(name)
    if info is None:
        return f"<b>{escape(name)}</b> (not in the model table)"
    licence = escape(str(info.licence))
    if getattr(info, "licence_url", ""):
        licence += (f' <a style="color:#ffb300" href="{escape(str(info.licence_url))}">'
                    "read the licence</a>")
    badge = {"installed": "✔ installed", "missing": "not installed",
             "corrupt": "⚠ corrupt: download or import again"}.get(state, state)
    return (f"<b>{escape(str(info.title))}</b> <span style='color:#999'>({escape(name)})</span>"
            f"<br>Licence: {licence} · about {float(info.size_mb):.0f} MB"
            + (f" · <i>{escape(badge)}</i>" if badge else ""))


def download_model(name: str, models_dir: Path, progress: Callable[[int, int], None],
                   cancel: threading.Event) -> object:
    """``engines.models.download_model`` with a progress callback and a cancel event
    (the dialog has already asked for the licence)."""
    from engines import models

    return models.download_model(name, models_dir, accept_licence=True, progress=progress,
                                 cancel=cancel)


def import_model(src: Path, models_dir: Path) -> list[str]:
    from engines import models

    return list(models.import_model(src, models_dir))


def engine_status() -> dict[str, str | None]:
    """Each backend → None when usable, else why not (and how to get it)."""
    try:
        from engines.registry import backend_status
    except ImportError as exc:
        return {"onnxruntime-cpu": None, "tensorrt": f"engine registry missing ({exc})",
                "onnxruntime-cuda": f"engine registry missing ({exc})"}
    return dict(backend_status())
