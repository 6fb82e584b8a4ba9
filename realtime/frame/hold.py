"""No real face flashing through while the tracker briefly loses a face.

A hand crossing the face, a quick turn or a missed detection marks a track lost for a
few frames; after one more missed detection the tracker drops it, and the face is found
again under a new id at the next detection that sees it. Without help its person's real
face would show meanwhile. For up to ``HOLD_S`` seconds after a track is lost (dropped
or not), its newest texture keeps being pasted where the tracker last had it (plain,
not warped: the crop there may be a hand), until a tracked face takes that place (the
same person re-found, who wears its source's texture at once: ``TextureStore.for_face``)
or the time is up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from realtime.faces.track import Track, box_iou
from realtime.frame.textures import Texture, TextureStore
from realtime.types import Face, Frame

# How long a lost face keeps its texture: a hand passing, a few missed detections (on a
# loaded CPU three detections can take half a second); a person leaving the picture
# leaves their texture behind for this long at most.
HOLD_S = 1.0
# A tracked face overlapping a held one this much has taken its place.
TAKEN_IOU = 0.3


@dataclass
class _Held:
    face: Face  # where the tracker last had it
    texture: Texture
    since: float  # when it was lost (capture clock, seconds)


class HeldFaces:
    """The lost faces still shown. Used by the process thread only. ``held_frames``
    counts the faces pasted while held."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s: expected >= 0 seconds, got {hold_s}")
        self.hold_s = hold_s
        self._held: dict[int, _Held] = {}
        self.held_frames = 0

    def reset(self) -> None:
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)

    def pairs(self, tracks: Sequence[Track], frame: Frame, store: TextureStore,
              processor: Any) -> list[tuple[Any, Any]]:
        """(aligned, crop) pairs for ``processor.composite``: each face lost at most
        ``hold_s`` seconds before the frame's capture time that showed a texture (its own
        or a stand-in) and whose place no tracked face has taken."""
        if not self._held and not any(track.lost for track in tracks):
            return []  # the usual frame: nothing lost, nothing held (no store lookups)
        now = frame.captured_ns / 1e9
        tracked = []
        for track in tracks:
            if not track.lost:
                self._held.pop(track.track_id, None)
                tracked.append(track.box)
                continue
            # what it showed: its own texture, or the stand-in it wore before its first
            # swap (a face re-found after a loss wears its person's texture at once)
            texture = store.worn(track.track_id)
            if track.track_id in self._held:
                held = self._held[track.track_id]
                held.face, held.texture = track.face(), texture or held.texture
            elif texture is not None:
                self._held[track.track_id] = _Held(track.face(), texture, now)
        for key, held in list(self._held.items()):
            if now - held.since > self.hold_s or any(
                    box_iou(held.face.box, box) > TAKEN_IOU for box in tracked):
                del self._held[key]
        if not self._held:
            return []
        shown = list(self._held.values())
        self.held_frames += len(shown)
        aligned = processor.align(frame.image, [h.face for h in shown])
        return [(a, h.texture.crop) for a, h in zip(aligned, shown, strict=True)]
