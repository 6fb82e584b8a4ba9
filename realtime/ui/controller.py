"""The one adapter between the window and the live pipeline.

Everything the UI knows about ``realtime.pipeline``, ``capture``, ``sinks``, ``sources``,
``swap`` and ``engines`` goes through this module and the rooms it re-exports
(``runtime``: what a build makes; ``runtime_build``: the real graph; ``sink_switch``: the
outputs switched while running; ``model_catalog``: the model table), so an API change
there is fixed here. Methods fall in two groups: *heavy* ones (``build``, ``add_source``
...) run on a worker thread, never on the GUI thread; *light* ones (``select_source``,
``preview``, ``stats``) are thread-safe and cheap enough for a key press or a timer tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from realtime.config import Settings
from realtime.stats import PipelineStats
from realtime.types import SourceFace, SwapResult
from realtime.ui.controller_faces import FaceAssignments
from realtime.ui.controller_outputs import OutputSwitching
from realtime.ui.model_catalog import (
    describe_model,
    download_model,
    engine_status,
    import_model,
    installed_swappers,
    model_state,
)
from realtime.ui.runtime import (
    REQUIRED_MODELS,
    BankLike,
    BuildFn,
    ModelsMissing,
    NotRunning,
    PipelineLike,
    RecorderFactory,
    Runtime,
    SinkFactory,
)
from realtime.ui.runtime_build import (
    NoFaces,
    NoSources,
    build_runtime,
    camera_runtime,
    missing_models,
    prepare_models,
    recorder_sink,
    virtual_camera_sink,
)
from realtime.ui.sink_switch import Sink, SinkSwitch

__all__ = [
    "REBUILD_FIELDS", "REQUIRED_MODELS", "BankLike", "BuildFn", "Controller", "ModelsMissing",
    "NoFaces", "NoSources", "NotRunning", "PipelineLike", "RecorderFactory", "Runtime", "Sink",
    "SinkFactory", "SinkSwitch", "build_runtime", "camera_runtime", "describe_model",
    "download_model", "engine_status", "import_model", "installed_swappers", "missing_models",
    "model_state", "prepare_models", "recorder_sink", "virtual_camera_sink",
]

log = logging.getLogger(__name__)

# Settings whose change needs a new pipeline (models, input); the rest go live.
REBUILD_FIELDS: tuple[str, ...] = (
    "model", "engine", "detector", "camera", "camera_width", "camera_height", "camera_fps",
    "swap_mode", "mask",
)


class Controller:
    """Owns the pipeline for the window; see the module docstring for the threading rules.
    ``outputs`` (virtual camera, recorder) and ``faces`` (who wears what) are its parts."""

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
        self._lock = threading.RLock()
        self._runtime: Runtime | None = None
        self._switch = SinkSwitch()
        self.outputs = OutputSwitching(self._switch, vcam_factory, recorder_factory,
                                       self.preview)
        self.faces = FaceAssignments(lambda: self._runtime)
        self._active = 0
        self._swap_enabled = True
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
    def enhancer_status(self) -> str:
        """The face enhancer's state line ("preparing the enhancer…"), "" when none."""
        runtime = self._runtime
        return runtime.enhancer_status() if runtime else ""

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

    def preview(self) -> tuple[int, SwapResult | None]:
        runtime = self._runtime
        return runtime.pipeline.preview() if runtime else (-1, None)

    def stats(self) -> PipelineStats | None:
        runtime = self._runtime
        return runtime.pipeline.stats() if runtime else None

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
        self.outputs.stop()
        self.stop_pipeline()

    # -- internals ----------------------------------------------------------------

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

