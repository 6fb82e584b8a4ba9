"""Face selection: all, largest, match:REF by cosine similarity."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.faces.select import FaceModeError, cosine_similarity, parse_mode, select_faces
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


def test_all_and_largest() -> None:
    assert [f.track_id for f in select_faces(FACES, "all")] == [0, 1, 2]
    assert [f.track_id for f in select_faces(FACES, "largest")] == [1]
    assert select_faces([], "largest") == []


def test_match_keeps_faces_over_the_threshold() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=512)
    other = rng.normal(size=512)
    vectors = {
        0: reference + 0.3 * rng.normal(size=512),  # same person, noisy
        1: other,
        2: -reference,
    }
    chosen = select_faces(
        FACES, "match:ref.jpg", reference=reference,
        embed=lambda f: vectors[f.track_id], threshold=0.45,
    )  # fmt: skip
    assert [f.track_id for f in chosen] == [0]
    assert cosine_similarity(reference, vectors[0]) >= 0.45
    everyone = select_faces(
        FACES, "match:ref.jpg", reference=reference,
        embed=lambda f: vectors[f.track_id], threshold=-1.0,
    )  # fmt: skip
    assert len(everyone) == 3


def test_match_without_reference_is_an_error() -> None:
    with pytest.raises(FaceModeError, match="reference vector"):
        select_faces(FACES, "match:ref.jpg", reference=None, embed=None, threshold=0.5)


def test_cosine_similarity_values() -> None:
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, np.zeros(2)) == 0.0


def test_largest_faces_keeps_the_biggest_in_their_order() -> None:
    """Issue 15 item 5: the cap ``live --max-faces`` applies (largest first)."""
    from realtime.faces.select import largest_faces

    sizes = [30, 90, 10, 60, 120]
    faces = [_face(i, 200.0 * i, s) for i, s in enumerate(sizes)]
    kept = largest_faces(faces, 3)
    assert [f.track_id for f in kept] == [1, 3, 4]
    assert largest_faces(faces, 10) == faces
