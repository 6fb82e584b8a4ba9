"""The ``faces`` mode strings and the per-frame cap.

Mode strings (``Settings.faces`` and ``swap --faces``): ``"all"``, ``"largest"``,
``"match:/path/to/ref.jpg"``. What each mode swaps is decided by the face plan
(:mod:`realtime.faces.plan`); ``match:``'s person is a face-map entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


MAX_FACES_RANGE = (1, 32)


def largest_faces(faces: Sequence[Face], limit: int) -> list[Face]:
    """At most ``limit`` of ``faces``: the largest, kept in their original order."""
    if len(faces) <= limit:
        return list(faces)
    keep = {id(f) for f in sorted(faces, key=lambda f: f.detection.area, reverse=True)[:limit]}
    return [f for f in faces if id(f) in keep]
