"""The per-frame face work shared by the swap CLI, the live pipeline and the UI.

``FrameProcessor.process(image, faces, source)``: align each face onto the swapper's
template, swap all of them in one engine call, paste each back inside its own face
region. Detection and face selection stay with the caller (the live pipeline tracks
faces between detections; the CLI detects every frame).

With a face parser and ``Settings.mask`` not ``box``, ``swap_crops`` also parses the
target crops and returns ``MaskedCrop``s (the swapped crop with its soft face mask), so
the mask is made with the swap (on the swap worker in async mode) and travels with the
texture: a later frame pastes it with that frame's own transform. Given the faces' track
ids, the host processor re-parses a track only as often as ``realtime.frame.mask_reuse``
allows and reuses that track's newest mask in between (the mask is in crop space).

``realtime.frame.process_torch.TorchFrameProcessor`` is the same on one torch device (the GPU
path: one upload, one download per frame); ``choose_processor`` picks between them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from realtime.config import Settings
from realtime.frame.mask_reuse import MaskReuse
from realtime.frame.strength import face_vectors
from realtime.types import AlignedFace, Face, SourceFace, ValueTypeError, check_image

if TYPE_CHECKING:
    from realtime.faces.identity import IdentityEncoder
    from realtime.frame.enhance import LazyEnhancer
    from realtime.frame.parsing import FaceParser
    from realtime.frame.swap import FaceSwapper

log = logging.getLogger(__name__)


def row_vectors(family: str, sources: Sequence[SourceFace | np.ndarray], crops: Sequence[Any],
                strength: float, encoder: IdentityEncoder | None) -> np.ndarray:
    """(N, 512): one identity vector per face (each face's own source, steered towards the
    face by ``strength``), so one generator call swaps faces wearing different people."""
    if len(sources) != len(crops):
        raise ValueTypeError(f"expected one source per face, got {len(sources)} for "
                             f"{len(crops)} faces")
    vectors = [identity_vector(family, s) for s in sources]
    if strength == 1.0 or encoder is None:
        return np.stack(vectors).astype(np.float32, copy=False)
    return np.stack([face_vectors(v, [c], strength, encoder)[0]
                     for v, c in zip(vectors, crops, strict=True)])


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


@dataclass(frozen=True, eq=False)  # may hold tensors: compare by identity
class MaskedCrop:
    """A swapped crop with the parsing mask of the target crop it was swapped from:
    ``crop`` BGR uint8 (S, S, 3), ``mask`` float32 (S, S) in [0, 1] or ``None`` (the
    parser found no face: the box mask alone, as the official code does). numpy on the
    host processor, tensors on the device one."""

    crop: Any
    mask: Any


def split_masked(aligned: Sequence[Any], swapped: Sequence[Any],
                 use_masks: bool) -> tuple[list[Any], list[Any]]:
    """(crops, masks) from ``swap_crops`` results, one per aligned face (else
    ``ValueTypeError``); masks are None unless ``use_masks``."""
    if len(aligned) != len(swapped):
        raise ValueTypeError(
            f"composite: expected one swapped crop per face, got {len(swapped)} for "
            f"{len(aligned)} faces"
        )
    crops = [s.crop if isinstance(s, MaskedCrop) else s for s in swapped]
    masks = [s.mask if use_masks and isinstance(s, MaskedCrop) else None for s in swapped]
    return crops, masks


def enhance_crops(crops: list[Any], family: str, settings: Settings,
                  enhancer: LazyEnhancer | None) -> list[Any]:
    """The swapped crops through the face enhancer when the setting asks for it (host
    numpy crops; larger crops come back, see ``realtime.frame.enhance``)."""
    if settings.enhance == "off" or enhancer is None or not crops:
        return crops
    opened = enhancer.get()
    if opened is None:  # not installed: logged once by LazyEnhancer
        return crops
    return opened.enhance(crops, family, settings.enhance_blend)


def matrix_and_mask(matrix: np.ndarray, size: int, crop_size: int,
                    mask: Any) -> tuple[np.ndarray, Any]:
    """The paste matrix and mask for a crop ``crop_size`` wide of a face aligned at
    ``size`` (an enhanced crop is larger: its matrix is scaled, its mask resized)."""
    if crop_size == size:
        return matrix, mask
    from realtime.frame.enhance import scale_matrix

    if isinstance(mask, np.ndarray):
        import cv2

        mask = cv2.resize(mask, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    return scale_matrix(matrix, crop_size / size), mask


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

    def swap_crops(self, aligned: Sequence[Any], source: SourceFace | np.ndarray,
                   tracks: Sequence[int] | None = None) -> list[Any]: ...

    def composite(
        self, image: np.ndarray, aligned: Sequence[Any], swapped: Sequence[Any]
    ) -> np.ndarray: ...

    def process(
        self, image: np.ndarray, faces: Sequence[Face], source: SourceFace | np.ndarray
    ) -> tuple[np.ndarray, dict[str, float]]: ...


def swap_by_source(processor: FaceProcessor, aligned: Sequence[Any],
                   sources: Sequence[SourceFace], track_ids: Sequence[int]) -> list[Any]:
    """Every face in one swapper call (one identity vector per row: ``swap_rows``) when
    the processor can, else one call per distinct source; crops come back in face order.
    The track ids let the processor reuse each face's own parsing mask."""
    rows = getattr(processor, "swap_rows", None)
    if rows is not None:
        return list(rows(aligned, sources, tracks=track_ids))
    out: list[Any] = [None] * len(aligned)
    groups: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        groups.setdefault(src.name, []).append(i)
    for indices in groups.values():
        crops = processor.swap_crops([aligned[i] for i in indices], sources[indices[0]],
                                     tracks=[track_ids[i] for i in indices])
        for i, crop in zip(indices, crops, strict=True):
            out[i] = crop
    return out


def timed_stages(processor: Any, image: np.ndarray, faces: Sequence[Face],
                 identity: Any) -> tuple[np.ndarray, dict[str, float]]:
    """align → swap → composite on ``processor`` (host or device), with each stage's wall
    time in ms; ``identity`` is whatever the processor's ``swap_crops`` takes."""
    t0 = time.perf_counter()
    aligned = processor.align(image, faces)
    t1 = time.perf_counter()
    swapped = processor.swap_crops(aligned, identity)
    t2 = time.perf_counter()
    out = processor.composite(image, aligned, swapped)
    t3 = time.perf_counter()
    timings = {
        "align": (t1 - t0) * 1000.0,
        "swap": (t2 - t1) * 1000.0,
        "composite": (t3 - t2) * 1000.0,
    }
    if processor.uses_parser and processor.parse_ms is not None:
        timings["parse"] = processor.parse_ms  # part of "swap"
    return out, timings


class FrameProcessor:
    """Align → swap → composite for one frame. Holds no per-frame state."""

    def __init__(
        self, swapper: FaceSwapper, encoder: IdentityEncoder | None, settings: Settings,
        *, parser: FaceParser | None = None, enhancer: LazyEnhancer | None = None,
    ) -> None:
        if encoder is not None and encoder.family != swapper.family:
            raise ValueTypeError(
                f"encoder family {encoder.family!r} does not match swapper {swapper.family!r}"
            )
        self.swapper = swapper
        self.encoder = encoder
        self.settings = settings
        self.parser = parser
        self.enhancer = enhancer
        self.parse_ms: float | None = None  # the last parser call (crops → masks)
        self.mask_reuse = MaskReuse()

    @property
    def uses_parser(self) -> bool:
        """Whether faces get the parsing mask now (a parser, and the setting not box)."""
        return self.parser is not None and self.settings.mask != "box"

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
        self, aligned: Sequence[AlignedFace], source: SourceFace | np.ndarray,
        tracks: Sequence[int] | None = None,
    ) -> list[Any]:
        """Swapped crops (numpy); ``MaskedCrop``s when the parsing mask is on. With
        ``tracks`` (one id per face) a track whose mask is recent enough reuses it
        (``mask_reuse``); without, every face is parsed."""
        self.identity_vector(source)  # a missing identity fails even without faces
        return self.swap_rows(aligned, [source] * len(aligned), tracks)

    def swap_rows(self, aligned: Sequence[AlignedFace],
                  sources: Sequence[SourceFace | np.ndarray],
                  tracks: Sequence[int] | None = None) -> list[Any]:
        """``swap_crops`` with one source per face: one generator call and one parser
        call for all faces, whatever their identities."""
        if tracks is not None and len(tracks) != len(aligned):
            raise ValueTypeError(f"swap_crops: expected one track id per face, got "
                                 f"{len(tracks)} for {len(aligned)} faces")
        if not aligned:
            return []
        vectors = row_vectors(self.family, sources, [a.crop for a in aligned],
                              self.settings.identity_strength, self.encoder)
        crops = enhance_crops(self.swapper.swap(aligned, vectors), self.family,
                              self.settings, self.enhancer)
        if not self.uses_parser or not aligned:
            return crops
        assert self.parser is not None
        ids: list[int | None] = list(tracks) if tracks is not None else [None] * len(aligned)
        plan = self.mask_reuse.plan(ids)
        masks = [kept for _, kept in plan]
        due = [i for i, (parse, _) in enumerate(plan) if parse]
        if due:
            t0 = time.perf_counter()
            parsed = self.parser.masks([aligned[i].crop for i in due])
            seconds = time.perf_counter() - t0
            self.parse_ms = seconds * 1000.0
            self.mask_reuse.store([ids[i] for i in due], parsed, seconds)
            for i, mask in zip(due, parsed, strict=True):
                masks[i] = mask
        return [MaskedCrop(c, m) for c, m in zip(crops, masks, strict=True)]

    def composite(
        self, image: np.ndarray, aligned: Sequence[AlignedFace], swapped: Sequence[Any]
    ) -> np.ndarray:
        """A copy of ``image`` with each swapped crop (or ``MaskedCrop``) pasted inside
        its face region (and its parsed face, unless the mask setting is box)."""
        from realtime.frame.composite import paste_face

        crops, masks = split_masked(aligned, swapped, self.settings.mask != "box")
        out = image.copy()
        for face, crop, mask in zip(aligned, crops, masks, strict=True):
            matrix, mask = matrix_and_mask(face.matrix, face.size, crop.shape[0], mask)
            paste_face(
                out,
                crop,
                matrix,
                feather=self.settings.feather,
                color_match=self.settings.color_match,
                face_mask=mask,
            )
        return out

    def process(
        self, image: np.ndarray, faces: Sequence[Face], source: SourceFace | np.ndarray
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Swap ``faces`` in ``image`` with ``source``; returns (new image, stage ms)."""
        check_image("image", image)
        if not faces:
            return image.copy(), {}
        return timed_stages(self, image, faces, self.identity_vector(source))
