"""The texture store: per-track textures, the same-source stand-in, and refresh order."""

from __future__ import annotations

import numpy as np

from realtime.frame.textures import Texture, TextureStore
from realtime.types import AlignedFace, SourceFace


def _tex(name: str, frame: int, track: int) -> Texture:
    return Texture(np.full((4, 4, 3), frame, np.uint8), name, frame, track)


def test_own_texture_then_newest_of_the_same_source() -> None:
    store = TextureStore()
    store.put(1, _tex("a", 5, 1))
    store.put(2, _tex("b", 9, 2))
    store.put(3, _tex("a", 7, 3))
    assert store.for_face(1, "a", mapped=True).frame_index == 5  # type: ignore[union-attr]
    # a new track wearing "a": the newest "a" texture stands in
    assert store.for_face(4, "a", mapped=True).frame_index == 7  # type: ignore[union-attr]
    assert store.for_face(4, "c", mapped=True) is None
    # unmapped, any newest texture will do
    assert store.for_face(4, "c", mapped=False).frame_index == 9  # type: ignore[union-attr]
    store.retain([2])
    assert 1 not in store and 2 in store and len(store) == 1


def test_refresh_order_takes_new_faces_first_then_the_stalest() -> None:
    store = TextureStore()
    store.put(1, _tex("a", 10, 1))
    store.put(2, _tex("a", 3, 2))
    store.put(3, _tex("b", 12, 3))
    assert store.refresh_order([1, 2, 3, 4]) == [3, 1, 0, 2]
    # a face whose texture wears another source needs a new one first
    assert store.refresh_order([1, 2, 3], ["a", "a", "a"])[0] == 2


def test_fair_refresh_serves_every_face_in_turn() -> None:
    """A slow swapper taking one face per call in this order gives each of 3 faces its
    first texture within 3 calls and then refreshes each every 3 calls."""
    store = TextureStore()
    ids = [5, 6, 7]
    served = []
    for call in range(9):
        first = ids[store.refresh_order(ids)[0]]
        store.put(first, _tex("a", call, first))
        served.append(first)
    assert served[:3] == [5, 6, 7] and served[3:] == [5, 6, 7, 5, 6, 7]


def test_put_swapped_keeps_the_host_target_crop() -> None:
    store = TextureStore()
    crop = np.zeros((8, 8, 3), np.uint8)
    aligned = AlignedFace(crop, np.eye(2, 3), 8)
    store.put_swapped(4, [1, 2], [aligned, object()], ["c1", "c2"],
                      [SourceFace("a", (), {}), SourceFace("b", (), {})])
    first, second = store.get(1), store.get(2)
    assert first is not None and first.target is crop and first.track_id == 1
    assert second is not None and second.target is None and second.source_name == "b"


def test_put_swapped_keeps_the_device_target_crop() -> None:
    import torch

    from realtime.frame.process_torch import DeviceAlignedFace

    crop_t = torch.zeros((8, 8, 3), dtype=torch.uint8)
    store = TextureStore()
    store.put_swapped(2, [9], [DeviceAlignedFace(crop_t, np.eye(2, 3), 8)], ["c"],
                      [SourceFace("a", (), {})])
    texture = store.get(9)
    assert texture is not None and texture.target is crop_t
