"""Face swappers (SimSwap 224/512, inswapper_128) and their identity encoders.

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

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.types import AlignedFace, ValueTypeError

if TYPE_CHECKING:
    from engines.base import Engine, TensorSpec

log = logging.getLogger(__name__)

SWAP_MODELS: tuple[str, ...] = ("simswap-224", "simswap-512", "inswapper-128")
# The identity model each swapper family needs (names from engines/models.py).
ENCODER_MODELS: dict[str, str] = {
    "simswap-224": "arcface-simswap",
    "simswap-512": "arcface-simswap",
    "inswapper-128": "arcface-w600k",
}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
EMBEDDING_SIZE = 512
ARCFACE_SIZE = 112


class UnknownModelError(ValueError):
    """A model name that is not one of the swappers."""


def check_model_name(model: str) -> None:
    if model not in SWAP_MODELS:
        raise UnknownModelError(f"unknown swap model {model!r}: expected one of {SWAP_MODELS}")


def l2_normalize(vector: np.ndarray) -> np.ndarray:
    """Unit-length float32 copy; a zero vector is an error (no identity in it)."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm <= 0.0:
        raise ValueError(f"cannot normalise an identity vector with norm {norm}")
    return v / norm


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
        from realtime.align import CROP_SIZES

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
        """Run the generator on [N, 3, S, S] with one identity (512,) → [N, 3, S, S]."""
        n = int(batch.shape[0])
        vector = np.asarray(identity, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != EMBEDDING_SIZE:
            raise ValueTypeError(f"identity: expected ({EMBEDDING_SIZE},), got {identity.shape}")
        if n == 0:
            return batch.copy()
        target = batch.astype(self._dtype, copy=False)
        source = np.repeat(vector, n, axis=0).astype(self._source_dtype, copy=False)
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
        """All faces of one frame against one identity, in one engine call when possible."""
        if not crops:
            return []
        return self.decode_outputs(self.forward_swap(self.prepare_targets(crops), identity))

    def close(self) -> None:
        self.engine.close()


class IdentityEncoder:
    """Turns a face (image + five landmarks) into the identity vector a swapper wants.

    ``embed`` gives the vector the swapper consumes; ``identify`` the plain recognition
    vector (before inswapper's ``emap``), which is what face matching should compare.
    ``model_key`` identifies the weights (for on-disk caches).
    """

    def __init__(
        self,
        family: str,
        engine: Engine,
        *,
        emap: np.ndarray | None = None,
        model_files: Sequence[Path] = (),
    ) -> None:
        check_model_name(family)
        if family == "inswapper-128" and (
            emap is None or emap.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE)
        ):
            got = None if emap is None else emap.shape
            raise ValueTypeError(f"inswapper emap: expected (512, 512), got {got}")
        self.family = family
        self.engine = engine
        self.backend = engine.backend
        self.emap = None if emap is None else np.asarray(emap, dtype=np.float32)
        self._model_files = tuple(model_files)
        self._model_key: str | None = None
        if len(engine.inputs) != 1 or len(engine.outputs) < 1:
            raise ValueTypeError(
                f"identity engine: expected one input and one output, got "
                f"{[s.name for s in engine.inputs]} → {[s.name for s in engine.outputs]}"
            )
        self._input = engine.inputs[0]
        self._output = engine.outputs[0].name

    @property
    def crop_family(self) -> str:
        """The alignment template the encoder crops with."""
        return "arcface-112" if self.family == "inswapper-128" else self.family

    @property
    def model_key(self) -> str:
        """sha256 over the encoder's model files (and emap), computed once."""
        if self._model_key is None:
            digest = hashlib.sha256(self.family.encode())
            for path in self._model_files:
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
            if self.emap is not None:
                digest.update(self.emap.tobytes())
            self._model_key = digest.hexdigest()
        return self._model_key

    def prepare_crop(self, crop: np.ndarray) -> np.ndarray:
        """Aligned BGR crop → [1, 3, 112, 112] input tensor."""
        if self.family == "inswapper-128":
            if crop.shape[:2] != (ARCFACE_SIZE, ARCFACE_SIZE):
                raise ValueTypeError(f"w600k crop: expected 112×112, got {crop.shape}")
            rgb = crop[:, :, ::-1].astype(np.float32)
            tensor = (rgb - 127.5) / 127.5
        else:
            size = crop.shape[0]
            # Nearest-neighbour like torch's F.interpolate default: source index
            # floor(i * size / 112); for 224 that is every second pixel.
            index = np.floor(np.arange(ARCFACE_SIZE) * (size / ARCFACE_SIZE)).astype(np.int64)
            small = crop[index][:, index]
            rgb = small[:, :, ::-1].astype(np.float32) / 255.0
            tensor = (rgb - IMAGENET_MEAN) / IMAGENET_STD
        batch = tensor.transpose(2, 0, 1)[None]
        return np.ascontiguousarray(batch, dtype=np.dtype(self._input.dtype))

    def forward_identity(self, tensor: np.ndarray) -> np.ndarray:
        result = self.engine.run({self._input.name: tensor})
        return np.asarray(result[self._output], dtype=np.float32).reshape(-1)

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        from realtime.align import warp_face

        return warp_face(image, landmarks, self.crop_family).crop

    def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """L2-normalised recognition vector (512,) of the face at ``landmarks``."""
        return l2_normalize(self.forward_identity(self.prepare_crop(self.crop(image, landmarks))))

    def to_source(self, identity: np.ndarray) -> np.ndarray:
        """Recognition vector → the vector the swapper consumes."""
        if self.emap is None:
            return l2_normalize(identity)
        return l2_normalize(np.asarray(identity, dtype=np.float32) @ self.emap)

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The swapper's (512,) L2-normalised identity vector for the face at ``landmarks``."""
        return self.to_source(self.identify(image, landmarks))

    def close(self) -> None:
        self.engine.close()


def read_emap(onnx_path: Path) -> np.ndarray:
    """inswapper's identity projection: the last initializer of its graph (512×512)."""
    import onnx
    from onnx import numpy_helper

    from engines.base import ModelFileError

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelFileError(f"{onnx_path}: cannot read ONNX graph ({exc})") from exc
    initializers = model.graph.initializer
    if not initializers:
        raise ModelFileError(f"{onnx_path}: expected an emap initializer, the graph has none")
    emap = numpy_helper.to_array(initializers[-1]).astype(np.float32)
    if emap.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE):
        raise ModelFileError(
            f"{onnx_path}: last initializer {initializers[-1].name!r} should be the 512×512 "
            f"emap, got shape {emap.shape}"
        )
    return emap


def _open(path: Path, engine: str, models_dir: Path, threads: int | None) -> Engine:
    from engines.registry import open_engine

    return open_engine(path, engine, cache_dir=models_dir / "engines", threads=threads)


def load_swapper(model: str, models_dir: Path, *, engine: str = "auto",
                 threads: int | None = None) -> FaceSwapper:
    """Open ``model``'s generator (exporting SimSwap checkpoints to ONNX on first use).

    ``threads`` caps ONNX Runtime's CPU threads (None: its default, every core).
    Raises ``engines.models.ModelMissing`` with the command to run when absent.
    """
    from export.onnx import ensure_onnx

    check_model_name(model)
    path = ensure_onnx(models_dir, model)
    swapper = FaceSwapper(model, _open(path, engine, models_dir, threads))
    log.info("swapper %s on %s (batched=%s)", model, swapper.backend, swapper.batched)
    return swapper


def load_encoder(model: str, models_dir: Path, *, engine: str = "auto",
                 threads: int | None = None) -> IdentityEncoder:
    """Open the identity encoder that ``model`` (a swapper name) needs (``threads`` as
    for ``load_swapper``)."""
    from export.onnx import ensure_onnx

    check_model_name(model)
    path = ensure_onnx(models_dir, ENCODER_MODELS[model])
    emap = None
    files: list[Path] = [path]
    if model == "inswapper-128":
        swapper_path = ensure_onnx(models_dir, model)
        emap = read_emap(swapper_path)
    encoder = IdentityEncoder(model, _open(path, engine, models_dir, threads), emap=emap,
                              model_files=files)
    log.info("identity encoder for %s on %s", model, encoder.backend)
    return encoder
