"""Identity strength: how far the swapped face moves from the target towards the source.

``Settings.identity_strength`` ``s`` in [0, 2]: each face gets
``normalize(t + s · (src − t))``, where ``src`` is the source's swapper vector and ``t``
the target face's own vector in the same space (the encoder run on the target crop,
then the same projection the source went through: SimSwap's L2-normalised ArcFace
vector; inswapper's ``normalize(normalize(w600k) @ emap)``). Both generators take a
unit-length vector, so the blend is renormalised. ``s = 1`` is the model's own
behaviour (the source vector, no encoder call); ``s = 0`` asks the generator for the
target's own identity; ``s > 1`` extrapolates past the source.

The target's vector comes from the swap crop itself: SimSwap's encoder uses the same
template and size as its generator, and inswapper's 128 template is the ArcFace 112
template shifted 8 px in x, so its 112 crop is ``crop[:112, 8:120]`` (no second warp).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from realtime.types import ValueTypeError

if TYPE_CHECKING:
    from realtime.faces.identity import IdentityEncoder

log = logging.getLogger(__name__)

STRENGTH_RANGE: tuple[float, float] = (0.0, 2.0)
# inswapper's 128 crop is the ArcFace 112 template shifted +8 px in x (SPEC §4)
_INSWAPPER_SHIFT = 8
_ARCFACE = 112


def check_strength(strength: float) -> float:
    """``strength`` as a float in ``STRENGTH_RANGE``; else ``ValueError`` saying so."""
    low, high = STRENGTH_RANGE
    value = float(strength)
    if not np.isfinite(value) or not low <= value <= high:
        raise ValueError(f"identity strength: expected {low:g}..{high:g}, got {strength!r}")
    return value


def steer_identity(source: np.ndarray, target: np.ndarray, strength: float) -> np.ndarray:
    """``normalize(target + strength · (source − target))`` as float32 (512,).

    ``source`` and ``target`` are unit vectors in the swapper's space. When the blend
    has no length (opposite vectors at 0.5) the source is returned unchanged."""
    src = np.asarray(source, dtype=np.float32).reshape(-1)
    tgt = np.asarray(target, dtype=np.float32).reshape(-1)
    if src.shape != tgt.shape:
        raise ValueTypeError(f"identity strength: source {src.shape} and target {tgt.shape} "
                             "vectors differ in size")
    blend = tgt + np.float32(strength) * (src - tgt)
    norm = float(np.linalg.norm(blend))
    if not np.isfinite(norm) or norm < 1e-6:
        return src
    return (blend / norm).astype(np.float32)


def encoder_crop(family: str, crop: np.ndarray) -> np.ndarray:
    """The encoder's input crop cut from the swapper's aligned crop (BGR uint8)."""
    if family == "inswapper-128":
        if crop.shape[:2] != (128, 128):
            raise ValueTypeError(f"inswapper crop: expected 128×128, got {crop.shape}")
        return np.ascontiguousarray(
            crop[:_ARCFACE, _INSWAPPER_SHIFT : _INSWAPPER_SHIFT + _ARCFACE])
    return crop


def target_vector(encoder: IdentityEncoder, crop: np.ndarray) -> np.ndarray:
    """The target face's own vector in the swapper's space, from its aligned crop."""
    from realtime.faces.identity import l2_normalize

    tensor = encoder.prepare_crop(encoder_crop(encoder.family, crop))
    return encoder.to_source(l2_normalize(encoder.forward_identity(tensor)))


def face_vectors(
    source: np.ndarray, crops: Sequence[np.ndarray], strength: float,
    encoder: IdentityEncoder | None,
) -> np.ndarray:
    """One vector per crop, (N, 512) float32: the source itself at strength 1 (or with no
    encoder, logged), else steered per face by ``steer_identity``."""
    vector = np.asarray(source, dtype=np.float32).reshape(-1)
    n = len(crops)
    if strength == 1.0 or n == 0:
        return np.repeat(vector[None], n, axis=0)
    if encoder is None:
        log.warning("identity strength %.2f needs the identity encoder; none loaded, "
                    "using strength 1", strength)
        return np.repeat(vector[None], n, axis=0)
    return np.stack([steer_identity(vector, target_vector(encoder, c), strength)
                     for c in crops])
