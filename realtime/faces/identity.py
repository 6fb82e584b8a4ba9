"""Face identities: ArcFace encoders that turn a face into the vector a swapper wants.

Owned by ``faces`` (not ``frame``) because a source photo's identity is found before any
frame is processed: the source bank, face matching and the quality meter all need it,
and the swappers in ``realtime.frame.swap`` consume it. Conventions: shared/SPEC.md §2, §4.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.types import ValueTypeError

if TYPE_CHECKING:
    from engines.base import Engine

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
        from realtime.faces.align import warp_face

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

def open_model_engine(path: Path, engine: str, models_dir: Path, threads: int | None) -> Engine:
    from engines.registry import open_engine

    return open_engine(path, engine, cache_dir=models_dir / "engines", threads=threads)

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
    engine_ = open_model_engine(path, engine, models_dir, threads)
    encoder = IdentityEncoder(model, engine_, emap=emap, model_files=files)
    log.info("identity encoder for %s on %s", model, encoder.backend)
    return encoder
