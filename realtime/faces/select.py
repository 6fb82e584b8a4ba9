"""Which faces of a frame to swap: all, the largest, or those matching a reference.

Mode strings (``Settings.faces`` and ``swap --faces``): ``"all"``, ``"largest"``,
``"match:/path/to/ref.jpg"``. Matching compares L2-normalised recognition vectors by
cosine similarity; a face is kept when similarity ≥ ``threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from realtime.types import Face

MODES: tuple[str, ...] = ("all", "largest", "match:REF")


class FaceModeError(ValueError):
    """A ``--faces`` / ``Settings.faces`` value that is not a known mode."""


@dataclass(frozen=True)
class FaceMode:
    kind: str  # "all" | "largest" | "match"
    reference: str | None = None  # the reference photo path for "match"


def parse_mode(mode: str) -> FaceMode:
    """``"all"`` / ``"largest"`` / ``"match:PATH"`` → ``FaceMode``."""
    text = mode.strip()
    if text in ("all", "largest"):
        return FaceMode(text)
    if text.startswith("match:"):
        reference = text[len("match:") :].strip()
        if not reference:
            raise FaceModeError("faces mode 'match:' needs a reference photo: match:REF.jpg")
        return FaceMode("match", reference)
    raise FaceModeError(f"faces mode: expected one of {', '.join(MODES)}, got {mode!r}")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom > 0 else 0.0


MAX_FACES_RANGE = (1, 32)


def largest_faces(faces: Sequence[Face], limit: int) -> list[Face]:
    """At most ``limit`` of ``faces``: the largest, kept in their original order."""
    if len(faces) <= limit:
        return list(faces)
    keep = {id(f) for f in sorted(faces, key=lambda f: f.detection.area, reverse=True)[:limit]}
    return [f for f in faces if id(f) in keep]


def select_faces(
    faces: Sequence[Face],
    mode: str,
    *,
    reference: np.ndarray | None = None,
    embed: Callable[[Face], np.ndarray] | None = None,
    threshold: float = 0.45,
) -> list[Face]:
    """The faces to swap, in their original order.

    For ``match:`` modes ``reference`` is the reference face's recognition vector and
    ``embed(face)`` computes the same kind of vector for a face of the current frame.
    """
    kind = parse_mode(mode).kind
    if kind == "all" or not faces:
        return list(faces)
    if kind == "largest":
        return [max(faces, key=lambda f: f.detection.area)]
    if reference is None or embed is None:
        raise FaceModeError(f"faces mode {mode!r} needs a reference vector and an embed function")
    return [f for f in faces if cosine_similarity(embed(f), reference) >= threshold]
