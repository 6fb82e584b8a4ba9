"""One live session assembled from ``Settings``: camera, detector, swapper, identities,
sinks and the pipeline that wires them.

Both faces of the app use it: the ``live``/``bench`` commands (``realtime.cli``) and the
window (``realtime.ui``). It is the only place that chooses between the host and the
device frame processor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realtime.config import Settings

if TYPE_CHECKING:
    from realtime.faces.detect import FaceDetector
    from realtime.faces.identity import IdentityEncoder
    from realtime.faces.mapping import FaceMap
    from realtime.faces.quality import QualityMeter
    from realtime.frame.enhance import LazyEnhancer
    from realtime.frame.parsing import FaceParser
    from realtime.frame.process import FaceProcessor, FrameProcessor
    from realtime.frame.process_torch import TorchFrameProcessor
    from realtime.frame.swap import FaceSwapper
    from realtime.io.capture import FrameSource
    from realtime.io.sinks import FrameSink
    from realtime.pipeline import Pipeline
    from realtime.types import SourceFace

log = logging.getLogger(__name__)

PASSTHROUGH = "passthrough"
# The embedded detector as the live path tunes it: no upsampling (faces on a webcam
# are large) on a ``Settings.detect_width``-wide copy (default 640: ~25 ms on a
# 1280-wide frame instead of ~50 ms; it runs on a worker). 640 finds faces larger than
# ~160 px in a 1280-wide frame; 960 finds ~100 px faces in ~51 ms.
LIVE_DLIB_WIDTH = Settings().detect_width
LIVE_DLIB_UPSAMPLE = 0


def choose_processor(
    swapper: FaceSwapper, encoder: IdentityEncoder | None, settings: Settings,
    parser: FaceParser | None = None, enhancer: LazyEnhancer | None = None,
) -> FrameProcessor | TorchFrameProcessor:
    """The device-resident processor when the swapper's engine takes torch tensors on a
    CUDA device (TensorRT, a CUDA TorchEngine), else the numpy/OpenCV one.

    On the CPU the numpy path is kept even for a torch engine: OpenCV's warp and blend
    are faster there than the same maths in torch, and there is no upload to save.
    """
    engine = getattr(swapper, "engine", None)  # a passthrough/diagnostic swapper has none
    has_run_torch = callable(getattr(engine, "run_torch", None))
    # Decided without importing torch (slow to import, unused on the ONNX Runtime path):
    # TorchEngine exposes its torch.device, TensorRT always runs on CUDA.
    device = getattr(engine, "device", None)
    device_type = getattr(device, "type", None) if device is not None else None
    backend = getattr(engine, "backend", "none")
    if device_type is None and backend == "tensorrt":
        device_type = "cuda"
    if has_run_torch and device_type == "cuda":
        from realtime.frame.process_torch import TorchFrameProcessor

        log.info("frame processing on the GPU (%s): one upload and one download per frame",
                 backend)
        return TorchFrameProcessor(swapper, encoder, settings, parser=parser,
                                   enhancer=enhancer)
    from realtime.frame.process import FrameProcessor

    why = "its engine has no run_torch" if not has_run_torch else f"device {device_type}"
    log.info("frame processing on the host with numpy/OpenCV (%s: %s)", backend, why)
    return FrameProcessor(swapper, encoder, settings, parser=parser, enhancer=enhancer)


class PassthroughSwapper:
    """A swapper that returns each aligned crop unchanged: measures everything but the
    generator (detection, tracking, alignment, composite)."""

    backend = "passthrough"

    def __init__(self, family: str = "simswap-224") -> None:
        from realtime.faces.align import CROP_SIZES

        self.family = family
        self.crop_size = int(CROP_SIZES[family])

    def swap(self, crops: Sequence[Any], identity: Any) -> list[Any]:
        return [face.crop.copy() for face in crops]

    def close(self) -> None:
        """Nothing to release."""


def passthrough_source(family: str) -> SourceFace:
    """A stand-in identity for the passthrough swapper (its vector is never used)."""
    import numpy as np

    from realtime.types import SourceFace

    vector = np.zeros(512, np.float32)
    vector[0] = 1.0
    return SourceFace(PASSTHROUGH, (), {family: vector})


def live_threads(cpu_count: int | None = None) -> int:
    """ONNX Runtime threads per model in the live pipeline: every core but one, which the
    capture, detection and output threads need (``cpu_count`` defaults to this machine's)."""
    count = os.cpu_count() if cpu_count is None else cpu_count
    return max(1, (count or 1) - 1)


def make_live_detector(settings: Settings, models_dir: Path, *,
                       threads: int | None = None) -> FaceDetector:
    """The chosen detector tuned for frames (dlib: ``settings.detect_width`` wide, see
    ``LIVE_DLIB_*``; SCRFD ignores the width)."""
    from realtime.faces.detect import make_detector

    return make_detector(settings.detector, models_dir, engine=settings.engine,
                         threshold=settings.det_threshold, detect_width=settings.detect_width,
                         upsample=LIVE_DLIB_UPSAMPLE, threads=threads)


def make_photo_detector(settings: Settings, models_dir: Path,
                        live: FaceDetector) -> FaceDetector:
    """The detector for the source photos: dlib at its photo defaults (small faces in
    photos need upsampling), any other detector is ``live`` itself (nothing to tune)."""
    from realtime.faces.detect import DlibDetector, make_detector

    if not isinstance(live, DlibDetector):
        return live
    return make_detector("dlib", models_dir, threshold=settings.det_threshold)


def split_source(entry: str | Path) -> list[Path]:
    """One ``--source``/``Settings.sources`` entry → its photos: several photos of one
    person are joined with ``os.pathsep`` (how the window stores them)."""
    return [Path(part) for part in str(entry).split(os.pathsep) if part.strip()]


def add_sources(bank: Any, entries: Sequence[str | Path], *,
                skip: Sequence[str] = ()) -> None:
    """Each entry: a folder (one identity per image but those in ``skip``) or photos of
    one identity."""
    for entry in entries:
        photos = split_source(entry)
        if len(photos) == 1 and photos[0].is_dir():
            bank.add_folder(photos[0], skip=skip)
        elif photos:
            bank.add(photos)


@dataclass
class LiveParts:
    """Everything a pipeline needs, built from settings (shared by live, bench, the UI)."""

    processor: FaceProcessor
    detector: FaceDetector
    sources: Any  # SourceBank or a tuple of SourceFace
    model_note: str
    meter: QualityMeter | None = None
    face_map: FaceMap | None = None


def build_parts(settings: Settings, models_dir: Path, *,
                source_paths: Sequence[str | Path] = (), cache_dir: Path | None = None,
                threads: int | None = None) -> LiveParts:
    """Detector, swapper, encoder and the source identities for ``settings.model``.

    ``source_paths`` entries as ``add_sources`` takes them; ``threads`` per ONNX Runtime
    model, None = ``live_threads()``.
    """
    from realtime.config import default_cache_dir
    from realtime.frame.process import FrameProcessor
    from realtime.heap import keep_frame_buffers

    keep_frame_buffers()  # a live loop's frame buffers stay on the heap (realtime/heap.py)
    threads = live_threads() if threads is None else threads
    detector = make_live_detector(settings, models_dir, threads=threads)
    if settings.model == PASSTHROUGH:
        swapper = PassthroughSwapper()
        processor = FrameProcessor(swapper, None, settings)  # type: ignore[arg-type]
        return LiveParts(processor, detector, (passthrough_source(swapper.family),),
                         "passthrough (crops pasted back unchanged)")
    from realtime.faces.identity import load_encoder
    from realtime.faces.sources import SourceBank
    from realtime.frame.parsing import load_mask_parser
    from realtime.frame.swap import load_swapper

    swapper_real = load_swapper(settings.model, models_dir, engine=settings.engine,
                                threads=threads)
    parser = load_mask_parser(settings.mask, models_dir, engine=settings.engine,
                              threads=threads)
    encoder = load_encoder(settings.model, models_dir, engine=settings.engine, threads=threads)
    bank = SourceBank(lambda _family: encoder, make_photo_detector(settings, models_dir, detector),
                      (cache_dir or default_cache_dir()) / "sources",
                      families=(settings.model,))
    add_sources(bank, source_paths, skip=settings.removed_sources)
    face_map = make_face_map(settings, bank, encoder,
                             make_photo_detector(settings, models_dir, detector))
    meter = make_meter(settings, models_dir)
    # on a GPU (TensorRT) the frame stays on the device from upload to download
    mask = "box mask" if parser is None else f"parsing mask on {parser.backend}"
    from realtime.frame.enhance import lazy_enhancer

    # opened on the swap worker the first time the setting asks for it
    enhancer = lazy_enhancer(models_dir, engine=settings.engine, threads=threads)
    return LiveParts(choose_processor(swapper_real, encoder, settings, parser, enhancer),
                     detector, bank,
                     f"{settings.model} on {swapper_real.backend}, {mask}", meter, face_map)


def make_meter(settings: Settings, models_dir: Path) -> QualityMeter | None:
    """The identity meter for ``settings.model`` (None when ``quality_meter`` is off).
    One ONNX Runtime thread: it runs beside the swap, never instead of it."""
    if not settings.quality_meter or settings.model == PASSTHROUGH:
        return None
    from engines.base import EngineError
    from engines.models import ModelMissing
    from realtime.faces.quality import QualityMeter, load_meter_encoder

    try:
        encoder, name, independent = load_meter_encoder(settings.model, models_dir,
                                                        engine=settings.engine, threads=1)
    except (ModelMissing, EngineError, OSError, ValueError) as exc:
        # the meter is an extra: a session without it is still a working session
        log.warning("identity meter off: its encoder cannot be opened (%s)", exc)
        return None
    log.info("identity meter: %s (%s)", name,
             "independent of the swap" if independent else "the swap's own encoder")
    return QualityMeter(encoder, name, independent)


def make_face_map(settings: Settings, bank: Any, encoder: IdentityEncoder,
                  photo_detector: FaceDetector) -> FaceMap | None:
    """A ``FaceMap`` from ``settings.face_map`` (``REF.jpg=SOURCE.jpg`` entries: each
    SOURCE joins the bank, each REF's face becomes its person's reference vector) and
    ``faces = match:REF`` (the person in REF wears the active source, others are left
    alone). Photos are embedded now, so a bad one fails before the stream starts."""
    from realtime.faces.mapping import FaceMap, parse_map, photo_vector
    from realtime.faces.select import parse_mode
    from realtime.faces.sources import NoFaceError, read_image

    match = parse_mode(settings.faces).reference
    if not settings.face_map and match is None:
        return None
    face_map = FaceMap(threshold=settings.match_threshold, unassigned=settings.unassigned_faces)
    for ref, source_entry in parse_map(settings.face_map):
        image = read_image(Path(ref), "--map reference photo")
        found = list(photo_detector.detect(image))
        if not found:
            raise NoFaceError(f"--map reference photo {ref}: no face found")
        best = max(found, key=lambda d: d.area)
        source = bank.add(split_source(source_entry))
        face_map.add_reference(encoder.identify(image, best.landmarks), source.name)
    if match is not None:
        face_map.set_match_photo(match)
        try:
            vector = photo_vector(match, photo_detector.detect, encoder.identify)
        except ValueError as exc:
            raise NoFaceError(f"--faces match: {exc}") from exc
        face_map.add_photo_vector(match, vector)
    return face_map


def make_sinks(settings: Settings, frame_size: tuple[int, int], fps: float) -> list[FrameSink]:
    from realtime.io.sinks import AI_LABEL, NullSink, RecorderSink, VirtualCameraSink

    sinks: list[FrameSink] = []
    if settings.virtual_cam:
        sinks.append(VirtualCameraSink(settings.vcam_width, settings.vcam_height,
                                       settings.vcam_fps,
                                       label=AI_LABEL if settings.ai_label else None))
    if settings.record_path:
        sinks.append(RecorderSink(settings.record_path, frame_size[0], frame_size[1], fps))
    if not sinks:
        sinks.append(NullSink())
    return sinks


def open_camera(settings: Settings) -> FrameSource:
    from realtime.io.capture import open_source

    source = open_source(settings.camera, width=settings.camera_width,
                         height=settings.camera_height, fps=settings.camera_fps)
    source.open()
    return source


def build_pipeline(settings: Settings, models_dir: Path, source_paths: Sequence[str | Path] = (),
                   *, threads: int | None = None) -> tuple[Pipeline, LiveParts]:
    from realtime.pipeline import Pipeline

    parts = build_parts(settings, models_dir, source_paths=source_paths, threads=threads)
    source = open_camera(settings)
    size = getattr(source, "size", None) or (settings.camera_width, settings.camera_height)
    sinks = make_sinks(settings, size, float(source.fps or settings.camera_fps))
    pipeline = Pipeline(source, parts.processor, parts.detector, parts.sources, sinks, settings,
                        face_map=parts.face_map, meter=parts.meter)
    return pipeline, parts


