"""Lost faces keep their texture for a moment; a dropped track's texture stands in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from realtime.faces.track import OneEuroFilter, Track
from realtime.frame.hold import HeldFaces
from realtime.frame.textures import Texture, TextureStore
from realtime.types import Face, Frame


def _track(track_id: int, x: float, *, lost: bool) -> Track:
    box = np.array([x, 100, x + 100, 200], np.float32)
    landmarks = np.array([[x + 30, 130], [x + 70, 130], [x + 50, 150], [x + 35, 175],
                          [x + 65, 175]], np.float64)
    track = Track(track_id, box, landmarks, 0.9, OneEuroFilter(), smoothed=landmarks.copy())
    track.lost = lost
    return track


def _frame(seconds: float) -> Frame:
    return Frame(0, int(seconds * 1e9), np.zeros((480, 640, 3), np.uint8))


class _Aligner:
    """Records the faces it aligns; 'aligned' = the track id."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def align(self, image: np.ndarray, faces: Sequence[Face]) -> list[int]:
        self.calls.append([f.track_id for f in faces])
        return [f.track_id for f in faces]


def _store(*tracks: int) -> TextureStore:
    store = TextureStore()
    for t in tracks:
        store.put(t, Texture(np.full((4, 4, 3), t, np.uint8), "a", t, t))
    return store


def test_a_lost_face_keeps_its_texture_then_lets_go() -> None:
    held, store, aligner = HeldFaces(hold_s=0.5), _store(1), _Aligner()
    assert held.pairs([_track(1, 100, lost=False)], _frame(0.0), store, aligner) == []
    lost = [_track(1, 100, lost=True)]
    pairs = held.pairs(lost, _frame(0.1), store, aligner)
    assert [a for a, _ in pairs] == [1] and int(pairs[0][1][0, 0, 0]) == 1
    # the tracker dropped it: still shown where it was, within the hold
    assert len(held.pairs([], _frame(0.5), store, aligner)) == 1
    assert held.pairs([], _frame(0.61), store, aligner) == []  # 0.51 s after the loss
    assert held.held_frames == 2


def test_a_refound_face_takes_the_place_and_faces_without_texture_are_not_held() -> None:
    held, store, aligner = HeldFaces(), _store(1), _Aligner()
    held.pairs([_track(1, 100, lost=True), _track(2, 400, lost=True)], _frame(0.0), store,
               aligner)
    assert aligner.calls[-1] == [1]  # track 2 never had a texture
    # found again under a new id, overlapping: the new track is shown, not the held one
    assert held.pairs([_track(3, 110, lost=False)], _frame(0.1), store, aligner) == []
    assert len(held) == 0
    with pytest.raises(ValueError, match="hold_s"):
        HeldFaces(hold_s=-1)


def test_a_dropped_tracks_texture_stands_in_for_its_source() -> None:
    store = _store(1)
    store.retain([])  # the tracker dropped track 1
    assert 1 not in store
    stand_in = store.for_face(5, "a", mapped=True)
    assert stand_in is not None and stand_in.track_id == 1
    assert store.for_face(5, "b", mapped=True) is None
    unmapped = store.for_face(5, "b", mapped=False)
    assert unmapped is not None and unmapped.track_id == 1
    store.clear()
    assert store.for_face(5, "a", mapped=True) is None


def test_a_face_wearing_a_stand_in_is_held_too() -> None:
    """A face re-found under a new id wears its person's texture from a dropped track
    before its own first swap (a slow generator: often for seconds). Lost again before
    that swap, it keeps showing the stand-in: the real face does not flash through."""
    held, store, aligner = HeldFaces(), _store(1), _Aligner()
    store.retain([])  # track 1 dropped: its texture is its source's stand-in
    worn = store.for_face(7, "a", mapped=True)  # the frame shows track 7 with it
    assert worn is not None and 7 not in store  # no texture of its own yet
    assert store.worn(7) is worn
    pairs = held.pairs([_track(7, 100, lost=True)], _frame(0.0), store, aligner)
    assert [a for a, _ in pairs] == [7] and pairs[0][1] is worn.crop
    # a track the tracker no longer has forgets what it wore
    store.retain([])
    assert store.worn(7) is None
