"""Face swappers (SimSwap 224/512, inswapper_128); identities come from ``faces.identity``.

Every model runs behind ``engines.base.Engine``; this module only turns aligned crops
into tensors (``prepare_*``), calls the engine (``forward_*``) and turns the outputs
back into BGR crops (``decode_*``). Conventions are in shared/SPEC.md §1–4:

- SimSwap generators take the target crop as RGB in [0, 1] (no mean/std) and the
  SimSwap ArcFace vector; they return RGB in [0, 1].
- inswapper_128 takes the 128 crop (ArcFace template shifted +8 px in x) as RGB in
  [0, 1] and ``normalize(normalize(w600k(crop112)) @ emap)``, where ``emap`` is the
  last initializer of its ONNX graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.faces.identity import (
    EMBEDDING_SIZE,
    check_model_name,
    open_model_engine,
)
from realtime.types import AlignedFace, ValueTypeError

if TYPE_CHECKING:
    from engines.base import Engine, TensorSpec

log = logging.getLogger(__name__)
def _is_dynamic(dim: int | str) -> bool:
    return not isinstance(dim, int) or dim <= 0


def _pick_inputs(inputs: Sequence[TensorSpec]) -> tuple[TensorSpec, TensorSpec]:
    """(target image input, source vector input): by name when the file uses
    insightface's names, otherwise by rank (the export may name them differently)."""
    by_name = {spec.name: spec for spec in inputs}
    if "target" in by_name and "source" in by_name:
        return by_name["target"], by_name["source"]
    images = [s for s in inputs if len(s.shape) == 4]
    vectors = [s for s in inputs if len(s.shape) == 2]
    if len(inputs) != 2 or len(images) != 1 or len(vectors) != 1:
        shapes = [(s.name, s.shape) for s in inputs]
        raise ValueTypeError(
            f"swapper inputs: expected one [B,3,S,S] image and one [B,512] vector, got {shapes}"
        )
    return images[0], vectors[0]


class FaceSwapper:
    """One swap model on one engine. ``swap`` takes crops aligned for ``family``."""

    def __init__(self, family: str, engine: Engine) -> None:
        from realtime.faces.align import CROP_SIZES

        check_model_name(family)
        self.family = family
        self.crop_size = int(CROP_SIZES[family])
        self.engine = engine
        self.backend = engine.backend
        self._target, self._source = _pick_inputs(engine.inputs)
        if len(engine.outputs) < 1:
            raise ValueTypeError("swapper engine: expected one output, got none")
        self._output = engine.outputs[0].name
        size = self._target.shape[2:]
        if all(isinstance(d, int) and d > 0 for d in size) and tuple(size) != (
            self.crop_size,
            self.crop_size,
        ):
            raise ValueTypeError(
                f"{family}: expected a {self.crop_size}×{self.crop_size} target input, "
                f"got {self._target.shape}"
            )
        # A fixed batch dimension (inswapper's file says 1) means one call per face.
        self.batched = _is_dynamic(self._target.shape[0]) and _is_dynamic(self._source.shape[0])
        self._dtype = np.dtype(self._target.dtype)
        self._source_dtype = np.dtype(self._source.dtype)

    @property
    def target_spec(self) -> TensorSpec:
        """The generator's image input (name, shape, dtype)."""
        return self._target

    @property
    def source_spec(self) -> TensorSpec:
        """The generator's identity-vector input."""
        return self._source

    @property
    def output_name(self) -> str:
        return self._output

    def prepare_targets(self, crops: Sequence[AlignedFace]) -> np.ndarray:
        """BGR uint8 crops → float32 [N, 3, S, S] RGB in [0, 1]."""
        if not crops:
            return np.zeros((0, 3, self.crop_size, self.crop_size), dtype=np.float32)
        for i, face in enumerate(crops):
            if face.size != self.crop_size:
                raise ValueTypeError(
                    f"crop {i}: expected size {self.crop_size} for {self.family}, got {face.size}"
                )
        stack = np.stack([face.crop for face in crops])  # N,S,S,3 BGR
        batch = stack[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return np.ascontiguousarray(batch)

    def forward_swap(self, batch: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """Run the generator on [N, 3, S, S] with one identity (512,) for every face, or
        one per face (N, 512) → [N, 3, S, S]."""
        n = int(batch.shape[0])
        vectors = np.asarray(identity, dtype=np.float32)
        if vectors.shape == (EMBEDDING_SIZE,):
            vectors = np.repeat(vectors[None], n, axis=0)
        if vectors.shape != (n, EMBEDDING_SIZE):
            raise ValueTypeError(f"identity: expected ({EMBEDDING_SIZE},) or "
                                 f"({n}, {EMBEDDING_SIZE}), got {identity.shape}")
        if n == 0:
            return batch.copy()
        target = batch.astype(self._dtype, copy=False)
        source = vectors.astype(self._source_dtype, copy=False)
        if self.batched:
            return self._run(target, source)
        outs = [self._run(target[i : i + 1], source[i : i + 1]) for i in range(n)]
        return np.concatenate(outs, axis=0)

    def _run(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        result = self.engine.run({self._target.name: target, self._source.name: source})
        return np.asarray(result[self._output])

    def decode_outputs(self, out: np.ndarray) -> list[np.ndarray]:
        """[N, 3, S, S] RGB in [0, 1] → N BGR uint8 (S, S, 3) crops."""
        if out.ndim != 4 or out.shape[1] != 3:
            raise ValueTypeError(f"swapper output: expected [N, 3, S, S], got {out.shape}")
        values = np.nan_to_num(out.astype(np.float32, copy=False), nan=0.0)
        pixels = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return [np.ascontiguousarray(p.transpose(1, 2, 0)[:, :, ::-1]) for p in pixels]

    def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
        """All faces of one frame against one identity (512,) or one each (N, 512), in one
        engine call when possible."""
        if not crops:
            return []
        return self.decode_outputs(self.forward_swap(self.prepare_targets(crops), identity))

    def cancel(self) -> None:
        """Stop the model call in progress, when the engine can (ONNX Runtime)."""
        cancel = getattr(self.engine, "cancel", None)
        if cancel is not None:
            cancel()

    def close(self) -> None:
        self.engine.close()

def load_swapper(model: str, models_dir: Path, *, engine: str = "auto",
                 threads: int | None = None) -> FaceSwapper:
    """Open ``model``'s generator (exporting SimSwap checkpoints to ONNX on first use).

    ``threads`` caps ONNX Runtime's CPU threads (None: its default, every core).
    Raises ``engines.models.ModelMissing`` with the command to run when absent.
    """
    from export.onnx import ensure_onnx

    check_model_name(model)
    path = ensure_onnx(models_dir, model)
    swapper = FaceSwapper(model, open_model_engine(path, engine, models_dir, threads))
    log.info("swapper %s on %s (batched=%s)", model, swapper.backend, swapper.batched)
    return swapper


