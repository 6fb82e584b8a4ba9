"""The real graph from the real modules (the only place that names them), the camera
alone while no model runs, the checkpoint conversion and the output sinks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime.config import Settings
from realtime.types import SourceFace
from realtime.ui.runtime import REQUIRED_MODELS, ModelsMissing, NotRunning, Runtime
from realtime.ui.sink_switch import Sink


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
    from realtime.io.capture import camera_fps, open_source
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
    from realtime.frame.enhance import lazy_enhancer

    # opened on a background thread the first time "Enhance face" asks for it
    enhancer = lazy_enhancer(models_dir, engine=settings.engine, threads=threads)
    closers.append(enhancer.close)
    processor = choose_processor(swapper, encoders[settings.model], settings, parser,
                                 enhancer)
    # The bank detects on the source worker while the pipeline detects on its own
    # thread: dlib is not thread-safe (a shared instance aborts the process), so the
    # bank gets a detector of its own.
    bank_detector = make_detector(settings.detector, models_dir, engine=settings.engine,
                                  threshold=settings.det_threshold)
    bank = SourceBank(encoder_for, bank_detector, cache_dir / "sources",
                      families=(settings.model,))
    # a file plays at its own rate; the fps box is a camera request (index, device, name)
    frame_source = open_source(settings.camera, width=settings.camera_width,
                               height=settings.camera_height,
                               fps=camera_fps(settings.camera, settings.camera_fps))
    from realtime.session import make_face_map, make_meter

    face_map = make_face_map(settings, bank, encoders[settings.model], bank_detector)
    meter = make_meter(settings, models_dir)
    if meter is not None:
        closers.append(meter.encoder.close)
    pipeline = Pipeline(frame_source, processor, detector, bank, [sink], settings,
                        face_map=face_map, meter=meter)
    return Runtime(pipeline=pipeline, bank=bank, backend=str(swapper.backend),
                   input_description=frame_source.describe(), closers=closers,
                   enhancer_status=lambda: enhancer.status_text)


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
    from realtime.io.capture import camera_fps, open_source
    from realtime.pipeline import Pipeline
    from realtime.session import PassthroughSwapper

    frame_source = open_source(settings.camera, width=settings.camera_width,
                               height=settings.camera_height,
                               fps=camera_fps(settings.camera, settings.camera_fps))
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

