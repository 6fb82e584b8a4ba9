"""Exceptions as the short texts the window shows (banner, preview, gallery tile)."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def tile_message(exc: BaseException) -> str:
    """Short text for a gallery tile (the full text is in its tooltip)."""
    name = type(exc).__name__
    if name == "NoFaceError":
        return "No face found in this photo"
    if name == "SourceImageError":
        return "Not a readable image"
    return first_line(exc)[:80]
