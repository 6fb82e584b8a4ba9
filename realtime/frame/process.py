"""The per-frame face work shared by the swap CLI, the live pipeline and the UI.

``FrameProcessor.process(image, faces, source)``: align each face onto the swapper's
template, swap all of them in one engine call, paste each back inside its own face
region. Detection and face selection stay with the caller (the live pipeline tracks
faces between detections; the CLI detects every frame).

``realtime.frame.process_torch.TorchFrameProcessor`` is the same on one torch device (the GPU
path: one upload, one download per frame); ``choose_processor`` picks between them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from realtime.config import Settings
from realtime.types import AlignedFace, Face, SourceFace, ValueTypeError, check_image

if TYPE_CHECKING:
    from realtime.faces.identity import IdentityEncoder
    from realtime.frame.swap import FaceSwapper

log = logging.getLogger(__name__)


class MissingEmbeddingError(KeyError):
    """A source identity has no vector for the swapper's model family."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the sentence readable
        return str(self.args[0]) if self.args else ""


def identity_vector(family: str, source: SourceFace | np.ndarray) -> np.ndarray:
    """The (512,) vector a ``family`` swapper wants for ``source``."""
    if isinstance(source, np.ndarray):
        if source.shape != (512,):
            raise ValueTypeError(f"source vector: expected (512,), got {source.shape}")
        return source
    vector = source.embeddings.get(family)
    if vector is None:
        raise MissingEmbeddingError(
            f"source {source.name!r} has no identity vector for {family} "
            f"(has {sorted(source.embeddings)}); add it to the SourceBank for this model"
        )
    return vector


class FaceProcessor(Protocol):
    """What the pipeline and the CLIs need from a frame processor.

    The aligned faces and swapped crops are opaque here (``Any``): the host processor
    hands out numpy ones, the device one torch tensors that must not be downloaded.
    The caller only passes them back to the processor that made them.
    """

    swapper: FaceSwapper
    encoder: IdentityEncoder | None
    settings: Settings

    @property
    def family(self) -> str: ...

    def update_settings(self, settings: Settings) -> None: ...

    def align(self, image: np.ndarray, faces: Sequence[Face]) -> list[Any]: ...

    def swap_crops(self, aligned: Sequence[Any], source: SourceFace | np.ndarray) -> list[Any]: ...

    def composite(
        self, image: np.ndarray, aligned: Sequence[Any], swapped: Sequence[Any]
    ) -> np.ndarray: ...

    def process(
        self, image: np.ndarray, faces: Sequence[Face], source: SourceFace | np.ndarray
    ) -> tuple[np.ndarray, dict[str, float]]: ...


class FrameProcessor:
    """Align → swap → composite for one frame. Holds no per-frame state."""

    def __init__(
        self, swapper: FaceSwapper, encoder: IdentityEncoder | None, settings: Settings
    ) -> None:
        if encoder is not None and encoder.family != swapper.family:
            raise ValueTypeError(
                f"encoder family {encoder.family!r} does not match swapper {swapper.family!r}"
            )
        self.swapper = swapper
        self.encoder = encoder
        self.settings = settings

    @property
    def family(self) -> str:
        return self.swapper.family

    def update_settings(self, settings: Settings) -> None:
        """Composite options take effect from the next frame (one reference swap)."""
        self.settings = settings

    def identity_vector(self, source: SourceFace | np.ndarray) -> np.ndarray:
        """The (512,) vector the swapper wants for ``source``."""
        return identity_vector(self.family, source)

    def align(self, image: np.ndarray, faces: Sequence[Face]) -> list[AlignedFace]:
        from realtime.faces.align import warp_face

        return [warp_face(image, face.landmarks, self.family) for face in faces]

    def swap_crops(
        self, aligned: Sequence[AlignedFace], source: SourceFace | np.ndarray
    ) -> list[np.ndarray]:
        return self.swapper.swap(aligned, self.identity_vector(source))

    def composite(
        self, image: np.ndarray, aligned: Sequence[AlignedFace], swapped: Sequence[np.ndarray]
    ) -> np.ndarray:
        """A copy of ``image`` with each swapped crop pasted inside its face region."""
        from realtime.frame.composite import paste_face

        if len(aligned) != len(swapped):
            raise ValueTypeError(
                f"composite: expected one swapped crop per face, got {len(swapped)} for "
                f"{len(aligned)} faces"
            )
        out = image.copy()
        for face, crop in zip(aligned, swapped, strict=True):
            paste_face(
                out,
                crop,
                face.matrix,
                feather=self.settings.feather,
                color_match=self.settings.color_match,
            )
        return out

    def process(
        self, image: np.ndarray, faces: Sequence[Face], source: SourceFace | np.ndarray
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Swap ``faces`` in ``image`` with ``source``; returns (new image, stage ms)."""
        check_image("image", image)
        if not faces:
            return image.copy(), {}
        vector = self.identity_vector(source)
        t0 = time.perf_counter()
        aligned = self.align(image, faces)
        t1 = time.perf_counter()
        swapped = self.swapper.swap(aligned, vector)
        t2 = time.perf_counter()
        out = self.composite(image, aligned, swapped)
        t3 = time.perf_counter()
        timings = {
            "align": (t1 - t0) * 1000.0,
            "swap": (t2 - t1) * 1000.0,
            "composite": (t3 - t2) * 1000.0,
        }
        return out, timings
