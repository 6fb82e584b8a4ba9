"""Face modes (all, largest, match:REF) and the per-frame cap."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.faces.select import FaceModeError, parse_mode
from realtime.types import Detection, Face


def _face(track_id: int, x: float, size: float) -> Face:
    box = np.array([x, 10, x + size, 10 + size], dtype=np.float32)
    landmarks = np.tile(np.array([[x + size / 2, 10 + size / 2]], np.float32), (5, 1))
    return Face(track_id, Detection(box=box, score=0.9, landmarks=landmarks))


FACES = [_face(0, 0, 40), _face(1, 100, 90), _face(2, 300, 60)]


def test_parse_mode() -> None:
    assert parse_mode("all").kind == "all"
    assert parse_mode(" largest ").kind == "largest"
    mode = parse_mode("match:/tmp/ref.jpg")
    assert (mode.kind, mode.reference) == ("match", "/tmp/ref.jpg")
    for bad in ("biggest", "match:", ""):
        with pytest.raises(FaceModeError, match=r"expected one of|needs a reference"):
            parse_mode(bad)


def test_largest_faces_keeps_the_biggest_in_their_order() -> None:
    """Issue 15 item 5: the cap ``live --max-faces`` applies (largest first)."""
    from realtime.faces.select import largest_faces

    sizes = [30, 90, 10, 60, 120]
    faces = [_face(i, 200.0 * i, s) for i, s in enumerate(sizes)]
    kept = largest_faces(faces, 3)
    assert [f.track_id for f in kept] == [1, 3, 4]
    assert largest_faces(faces, 10) == faces
