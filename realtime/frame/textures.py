"""The texture store: the newest swapped face of each track, and which face to refresh.

When the swapper is slower than the camera, each frame pastes the newest swapped crop of
its track with the frame's own transform (head motion is followed by the transform; the
face's own motion by :mod:`realtime.frame.motion` when the texture mode asks for it).
A texture lives as long as its track. Thread-safe: the swap worker writes, the process
thread reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class Texture:
    """A swapped crop as the processor made it (numpy, ``MaskedCrop``, or tensors left on
    the GPU), the source it wears, the frame and track it was swapped from, and that
    frame's aligned target crop (for the motion that follows it: host BGR uint8, or the
    device processor's uint8 tensor; None when unknown). ``grey``: the flow's grey
    reference of that target, made on the host by the swap worker (None: made from
    ``target`` when needed); ``ready``: the CUDA event after the crop was written (the
    reader's stream waits on it; None on the host path and on the writer's own thread)."""

    crop: Any
    source_name: str
    frame_index: int
    track_id: int | None = None
    target: Any = None
    grey: Any = None
    ready: Any = None


class TextureStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._textures: dict[int, Texture] = {}
        # per source, the newest texture of a track the tracker dropped: a face re-found
        # under a new track id wears it at once instead of showing the real face
        self._orphans: dict[str, Texture] = {}
        # per track, the texture ``for_face`` last gave it (its own, or a stand-in before
        # its first swap): what a briefly lost face keeps showing (frame.hold)
        self._worn: dict[int, Texture] = {}

    def __len__(self) -> int:
        return len(self._textures)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._textures

    def get(self, track_id: int) -> Texture | None:
        return self._textures.get(track_id)

    def put(self, track_id: int, texture: Texture) -> None:
        with self._lock:
            self._textures[track_id] = texture

    def put_swapped(self, frame_index: int, track_ids: Sequence[int], aligned: Sequence[Any],
                    crops: Sequence[Any], sources: Sequence[Any], *, ready: Any = None,
                    greys: Sequence[Any] | None = None) -> None:
        """One swap's crops, each with the aligned target crop it came from (a host array,
        or the device processor's tensor, which stays on the device), its flow reference
        grey when known and the event after the crops were written."""
        refs = list(greys) if greys is not None else [None] * len(crops)
        for tid, face, crop, src, grey in zip(track_ids, aligned, crops, sources, refs,
                                              strict=True):
            target = getattr(face, "crop", None)
            if target is None:
                target = getattr(face, "crop_t", None)
            self.put(tid, Texture(crop, src.name, frame_index, tid, target, grey, ready))

    def clear(self) -> None:
        with self._lock:
            self._textures.clear()
            self._orphans.clear()
            self._worn.clear()

    def retain(self, live: Iterable[int]) -> None:
        """Textures live as long as their track (a briefly lost track keeps its own); a
        dropped track's texture stays as its source's stand-in (``for_face``)."""
        keep = set(live)
        with self._lock:
            for track in [t for t in self._worn if t not in keep]:
                del self._worn[track]
            for stale in [t for t in self._textures if t not in keep]:
                texture = self._textures.pop(stale)
                orphan = self._orphans.get(texture.source_name)
                if orphan is None or orphan.frame_index <= texture.frame_index:
                    self._orphans[texture.source_name] = texture

    def for_face(self, track_id: int, source_name: str, mapped: bool) -> Texture | None:
        """The track's own texture; else (a face new to the tracker, often the same person
        re-found after a loss) the newest texture of the same source, so the real face
        does not show for a whole swap interval; else that source's texture from a track
        the tracker dropped. Unmapped, any newest texture will do."""
        with self._lock:
            own = self._textures.get(track_id)
            if own is not None and (own.source_name == source_name or not mapped):
                return own
            same = [t for t in self._textures.values() if t.source_name == source_name]
            newest = max(same or ([] if mapped else list(self._textures.values())),
                         key=lambda t: t.frame_index, default=None)
            if newest is None and own is None:
                orphans = list(self._orphans.values())
                newest = self._orphans.get(source_name) if mapped else max(
                    orphans, key=lambda t: t.frame_index, default=None)
            chosen = newest or own
            if chosen is not None:
                self._worn[track_id] = chosen
            return chosen

    def worn(self, track_id: int) -> Texture | None:
        """The texture the track showed last (``for_face``'s answer), else its own."""
        with self._lock:
            return self._worn.get(track_id) or self._textures.get(track_id)

    def next_to_refresh(self, track_ids: Sequence[int],
                        source_names: Sequence[str] | None = None) -> int:
        """The index of the face a slow swapper should take next (``refresh_order``)."""
        return self.refresh_order(track_ids, source_names)[0]

    def refresh_order(self, track_ids: Sequence[int],
                      source_names: Sequence[str] | None = None) -> list[int]:
        """Indices into ``track_ids``, the face that most needs a new texture first: faces
        with no texture of their own (or one of another source), in frame order, then the
        stalest. A slow swapper that takes faces in this order gives a new face its first
        texture after about one swap, and refreshes each of N faces every N swaps."""
        names = list(source_names) if source_names is not None else [None] * len(track_ids)
        with self._lock:
            def key(i: int) -> tuple[int, int, int]:
                own = self._textures.get(track_ids[i])
                if own is None or (names[i] is not None and own.source_name != names[i]):
                    return (0, 0, i)
                return (1, own.frame_index, i)

            return sorted(range(len(track_ids)), key=key)
