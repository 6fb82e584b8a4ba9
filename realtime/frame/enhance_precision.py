"""FP16 or FP32 for the face enhancer, decided on real faces when its engine is opened.

GFPGAN's FP16 graph keeps the modulated convolutions in FP32 (``export.fp16.FP32_SCOPES``)
and lets an overflow reach the output (``export.gfpgan.clamp_finite``), where the engine's
finite check switches to FP32. A graph can still drift without overflowing, so where the
backend really computes in FP16 (TensorRT, DirectML, CoreML; ONNX Runtime CPU/CUDA and
OpenVINO run the FP32 graph whatever the precision) the FP16 engine and the FP32 one enhance
the five faces of insightface's ``t1.jpg`` (part of the runtime install) once, on the
enhancer's opening thread, and FP32 is kept when they differ by less than
``MIN_PSNR_DB`` (outputs mapped to [0, 1]; 35 dB is an RMS error of about 4.5 grey levels,
the bar this project also sets for a lower precision of the generator, docs/runtimes.md;
SimSwap's mixed FP16 graph measured 72.7 dB, docs/performance.md "FP16 drift").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engines.base import Engine

log = logging.getLogger(__name__)

MIN_PSNR_DB = 35.0
FP16_BACKENDS = frozenset({"tensorrt", "onnxruntime-directml", "onnxruntime-coreml"})
# Five-point landmarks (eyes, nose, mouth corners) of the five faces in t1.jpg that dlib's
# HOG detector and 68-point model find, reduced to five points (landmarks_68_to_5).
T1_LANDMARKS = np.array([
    [[87.3, 330.5], [128.7, 310.3], [118.0, 337.0], [114.0, 372.0], [148.0, 352.0]],
    [[1149.5, 327.8], [1192.2, 324.8], [1164.0, 348.0], [1153.0, 367.0], [1196.0, 364.0]],
    [[761.8, 398.8], [799.8, 403.8], [772.0, 431.0], [764.0, 436.0], [808.0, 441.0]],
    [[918.0, 120.0], [948.7, 115.8], [923.0, 148.0], [930.0, 174.0], [960.0, 168.0]],
    [[491.5, 320.5], [540.0, 333.8], [509.0, 366.0], [481.0, 368.0], [532.0, 380.0]],
], dtype=np.float32)


@dataclass(frozen=True)
class PrecisionCheck:
    """The outcome: the backend, FP16's PSNR against FP32 (NaN when FP16 gave NaN/Inf)
    and the precision kept."""

    backend: str
    psnr_db: float
    kept: str


def reference_faces() -> np.ndarray:
    """t1.jpg's five faces on the FFHQ 512 template: [5, 3, 512, 512] RGB in [-1, 1], the
    enhancer's input (``realtime.io.clip.ClipError`` when insightface is not installed)."""
    from realtime.faces.align import warp_face
    from realtime.io.clip import t1_image

    image = t1_image()
    crops = np.stack([warp_face(image, points, "simswap-512").crop for points in T1_LANDMARKS])
    rgb = crops[..., ::-1].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))


def _enhance(engine: Engine, faces: np.ndarray) -> np.ndarray:
    """The first output for ``faces``, row by row when the graph's batch is fixed."""
    name, output = engine.inputs[0].name, engine.outputs[0].name
    first = engine.inputs[0].shape[0]
    rows = [faces] if not (isinstance(first, int) and first > 0) else \
        [faces[i : i + 1] for i in range(len(faces))]
    return np.concatenate([np.asarray(engine.run({name: r})[output], np.float64) for r in rows])


def fp16_psnr(fp16: Engine, fp32: Engine, faces: np.ndarray) -> float:
    """PSNR in dB of the FP16 engine's enhanced faces against the FP32 engine's."""
    from export.fp16 import psnr

    reference, other = _enhance(fp32, faces), _enhance(fp16, faces)
    return psnr((reference + 1.0) / 2.0, (other + 1.0) / 2.0)


def open_checked(open_at: Callable[[str], Engine], *, faces: np.ndarray | None = None,
                 min_psnr_db: float = MIN_PSNR_DB) -> tuple[Engine, PrecisionCheck | None]:
    """The enhancer's engine: ``open_at("fp16")``, swapped for ``open_at("fp32")`` when its
    backend computes in FP16 and its faces differ from FP32's by less than ``min_psnr_db``
    (or hold NaN/Inf). No check (None) on FP32 backends, or when the reference faces or the
    FP32 engine cannot be had (logged; the run-time finite check still guards)."""
    from engines.base import EngineError
    from realtime.io.clip import ClipError

    engine = open_at("fp16")
    if engine.backend not in FP16_BACKENDS:
        return engine, None
    try:
        batch = reference_faces() if faces is None else faces
        reference = open_at("fp32")
    except (ClipError, EngineError) as exc:
        log.warning("enhancer: FP16 not compared with FP32 (%s); keeping FP16", exc)
        return engine, None
    try:
        value = fp16_psnr(engine, reference, batch)
    except Exception:
        reference.close()
        raise
    if value >= min_psnr_db:  # False for NaN
        reference.close()
        log.info("enhancer on %s: FP16 within %.1f dB PSNR of FP32 on t1.jpg's faces",
                 engine.backend, value)
        return engine, PrecisionCheck(engine.backend, value, "fp16")
    log.warning("enhancer on %s: FP16 differs from FP32 (PSNR %.1f dB < %.0f dB on t1.jpg's "
                "faces): using FP32", engine.backend, value, min_psnr_db)
    engine.close()
    return reference, PrecisionCheck(reference.backend, value, "fp32")
