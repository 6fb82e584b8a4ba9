"""No real face flashing through while the tracker briefly loses a face.

A hand crossing the face, a quick turn or one missed detection marks a track lost for a
few frames before it is found again (or dropped and re-found under a new id). Without
help its person's real face would show meanwhile. For up to ``HOLD_S`` seconds after a
track is lost, its own newest texture keeps being pasted where the tracker last had it
(plain, not warped: the crop there may be a hand). A re-found face under a new id wears
its source's texture at once (``TextureStore.for_face``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from realtime.faces.track import Track
from realtime.frame.textures import TextureStore
from realtime.types import Frame

# How long a lost face keeps its texture: the tracker keeps a lost track for one more
# missed detection (a few frames); this bounds a track lost by the flow for longer.
HOLD_S = 0.5


class HeldFaces:
    """The lost tracks still shown, and since when each was lost. Used by the process
    thread only. ``held_frames`` counts the faces pasted while held."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s: expected >= 0 seconds, got {hold_s}")
        self.hold_s = hold_s
        self._lost_at: dict[int, float] = {}
        self.held_frames = 0

    def reset(self) -> None:
        self._lost_at.clear()

    def pairs(self, tracks: Sequence[Track], frame: Frame, store: TextureStore,
              processor: Any) -> list[tuple[Any, Any]]:
        """(aligned, crop) pairs for ``processor.composite``: each track lost for at most
        ``hold_s`` seconds at the frame's capture time that has a texture of its own."""
        now, image = frame.captured_ns / 1e9, frame.image
        held = []
        present = set()
        for track in tracks:
            present.add(track.track_id)
            if not track.lost:
                self._lost_at.pop(track.track_id, None)
                continue
            since = self._lost_at.setdefault(track.track_id, now)
            texture = store.get(track.track_id)
            if texture is not None and now - since <= self.hold_s:
                held.append((track.face(), texture.crop))
        for gone in [t for t in self._lost_at if t not in present]:
            del self._lost_at[gone]
        if not held:
            return []
        self.held_frames += len(held)
        aligned = processor.align(image, [face for face, _ in held])
        return [(a, crop) for a, (_, crop) in zip(aligned, held, strict=True)]
