"""Face enhancement (GFPGAN 1.4) of swapped crops, on the FFHQ-aligned 512 view.

A swapped crop (S×S, the swapper's template) is warped onto the FFHQ 512 template by the
similarity between the swapper's template and FFHQ's (for SimSwap 224 its frontal pose
template; SimSwap 512 already is FFHQ 512), enhanced, and warped back into the swapper's
template at ``k·S`` pixels (``k = round(512 / S)``: 448 for SimSwap 224, 512 for inswapper
128), so the higher resolution reaches the paste. ``blend`` mixes the enhanced face with the
(upsampled) swap. The result is pasted exactly like a swap crop, with the same mask: the
composite scales the crop's matrix by ``k`` (``scale_matrix``) and resizes the mask.

Conventions (GFPGANer.enhance): input RGB ``(x/255 − 0.5)/0.5``; output in [-1, 1] →
``(y + 1)/2 · 255``, rounded, BGR.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realtime.types import ValueTypeError

if TYPE_CHECKING:
    from engines.base import Engine

log = logging.getLogger(__name__)

ENHANCE_MODES: tuple[str, ...] = ("off", "gfpgan")
ENHANCER_MODELS: dict[str, str] = {"gfpgan": "gfpgan-1.4"}
SIZE = 512


def upscale_factor(crop_size: int) -> int:
    """How many times larger the enhanced crop is than the swap crop."""
    return max(1, round(SIZE / crop_size))


def scale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """A frame → crop matrix for the same crop resampled ``factor`` times larger (pixel
    centres at integers: ``x' = factor·(x + 0.5) − 0.5``)."""
    out = np.asarray(matrix, dtype=np.float64) * factor
    out[:, 2] += (factor - 1.0) / 2.0
    return out


def to_ffhq(family: str) -> np.ndarray:
    """Swap-crop pixels → FFHQ 512 pixels (float64 (2, 3))."""
    from realtime.faces.align import FFHQ_512_TEMPLATE, estimate_similarity, family_templates

    templates = family_templates(family)
    template = templates[len(templates) // 2]  # SimSwap 224: the frontal one
    return estimate_similarity(template, FFHQ_512_TEMPLATE.astype(np.float64))


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` for (2, 3) affines."""
    full = np.vstack([inner, [0.0, 0.0, 1.0]])
    return np.asarray(outer @ full, dtype=np.float64)


class FaceEnhancer:
    """GFPGAN on an engine: ``enhance(crops, family, blend)`` → larger enhanced crops."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.backend
        if len(engine.inputs) != 1 or len(engine.outputs) < 1:
            raise ValueTypeError("enhancer engine: expected one input and one output")
        spec = engine.inputs[0]
        if tuple(spec.shape[1:]) != (3, SIZE, SIZE):
            raise ValueTypeError(f"enhancer input: expected [N, 3, {SIZE}, {SIZE}], got "
                                 f"{spec.shape}")
        self._input = spec
        self._output = engine.outputs[0].name
        self._batched = not (isinstance(spec.shape[0], int) and spec.shape[0] > 0)
        self.last_ms: float | None = None

    def prepare(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 512 crops → [N, 3, 512, 512] RGB in [-1, 1]."""
        stack = np.stack(faces)[..., ::-1].astype(np.float32)
        batch = (stack / np.float32(127.5) - np.float32(1.0)).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.dtype(self._input.dtype))

    def forward_enhance(self, batch: np.ndarray) -> np.ndarray:
        if self._batched:
            out = self.engine.run({self._input.name: batch})[self._output]
            return np.asarray(out)
        parts = [np.asarray(self.engine.run({self._input.name: batch[i : i + 1]})[self._output])
                 for i in range(batch.shape[0])]
        return np.concatenate(parts, axis=0)

    @staticmethod
    def decode(out: np.ndarray) -> list[np.ndarray]:
        """[N, 3, 512, 512] in [-1, 1] → BGR uint8 crops (NaN → 0)."""
        values = np.nan_to_num(np.asarray(out, dtype=np.float32), nan=0.0).clip(-1.0, 1.0)
        pixels = ((values + 1.0) * 127.5 + 0.5).astype(np.uint8)
        return [np.ascontiguousarray(p.transpose(1, 2, 0)[:, :, ::-1]) for p in pixels]

    def enhance(self, crops: Sequence[np.ndarray], family: str, blend: float) -> list[np.ndarray]:
        """Each swapped crop (S×S BGR) → its enhanced version at ``k·S`` (see module doc)."""
        if not crops:
            return []
        import time

        size = crops[0].shape[0]
        factor = upscale_factor(size)
        big = size * factor
        forward = to_ffhq(family)
        from realtime.faces.align import invert_affine

        back = scale_matrix(invert_affine(forward), factor)  # FFHQ 512 → big crop
        up = scale_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0]]), factor)
        views = [cv2.warpAffine(c, forward, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT) for c in crops]
        t0 = time.perf_counter()
        enhanced = self.decode(self.forward_enhance(self.prepare(views)))
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        out = []
        for crop, face in zip(crops, enhanced, strict=True):
            sharp = cv2.warpAffine(face, back, (big, big), flags=cv2.INTER_AREA
                                   if factor == 1 else cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            if blend >= 1.0:
                out.append(sharp)
                continue
            base = cv2.warpAffine(crop, up, (big, big), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            out.append(cv2.addWeighted(sharp, float(blend), base, 1.0 - float(blend), 0.0))
        return out

    def close(self) -> None:
        self.engine.close()


class LazyEnhancer:
    """Opens the enhancer the first time it is wanted (on the swap worker live, so the
    seconds of loading never stall the frame path). When it cannot be opened (the model
    is not installed) ``get`` logs why once and returns None from then on: the swap goes
    on without enhancement and ``error`` says why (the warning is in the log)."""

    def __init__(self, opener: Callable[[], FaceEnhancer]) -> None:
        self._opener = opener
        self._enhancer: FaceEnhancer | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def get(self) -> FaceEnhancer | None:
        with self._lock:
            if self._enhancer is None and self.error is None:
                try:
                    self._enhancer = self._opener()
                except Exception as exc:  # ModelMissing, NoEngineAvailable, export errors
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning("face enhancer unavailable, swapping without it: %s",
                                self.error)
            return self._enhancer

    def close(self) -> None:
        with self._lock:
            if self._enhancer is not None:
                self._enhancer.close()
                self._enhancer = None


def load_enhancer(mode: str, models_dir: Path, *, engine: str = "auto",
                  threads: int | None = None) -> FaceEnhancer:
    """The enhancer for ``mode`` (``gfpgan``), exporting its checkpoint to ONNX on first
    use; ``engines.models.ModelMissing`` with the commands to run when it is absent."""
    from export.onnx import ensure_onnx
    from realtime.faces.identity import open_model_engine

    if mode not in ENHANCER_MODELS:
        raise ValueError(f"enhance: expected one of {', '.join(ENHANCER_MODELS)}, got {mode!r}")
    path = ensure_onnx(Path(models_dir), ENHANCER_MODELS[mode])
    enhancer = FaceEnhancer(open_model_engine(path, engine, Path(models_dir), threads))
    log.info("enhancer %s on %s", mode, enhancer.backend)
    return enhancer


def lazy_enhancer(models_dir: Path, *, engine: str = "auto",
                  threads: int | None = None) -> LazyEnhancer:
    return LazyEnhancer(lambda: load_enhancer("gfpgan", models_dir, engine=engine,
                                              threads=threads))
