"""FaceMap: assignments by reference vector or click, followed per track, re-identified."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.faces.mapping import PENDING, UNASSIGNED, FaceMap, check_policy, parse_map


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return v / np.linalg.norm(v)


def _near(v: np.ndarray, seed: int, noise: float = 0.3) -> np.ndarray:
    """Another view of the same person: the vector plus a little noise."""
    return v + noise * _vec(1000 + seed) / np.sqrt(2)


def test_parse_map_accepts_pairs_and_names_a_bad_entry() -> None:
    assert parse_map(["a.jpg=b.jpg", " c.png = d.png "]) == [("a.jpg", "b.jpg"),
                                                           ("c.png", "d.png")]
    for bad in ("a.jpg", "=b.jpg", "a.jpg="):
        with pytest.raises(ValueError, match=r"REF\.jpg=SOURCE\.jpg"):
            parse_map([bad])
    with pytest.raises(ValueError, match="source"):
        check_policy("nobody")


def test_an_empty_map_asks_for_nothing() -> None:
    face_map = FaceMap()
    assert not face_map.active
    assert face_map.needs_vector([1, 2]) == []


def test_reference_vectors_assign_each_person_and_leave_strangers_unassigned() -> None:
    alice, bob, carol = _vec(1), _vec(2), _vec(3)
    face_map = FaceMap(threshold=0.5)
    face_map.add_reference(alice, "Grace")
    face_map.add_reference(bob, "Astronaut")
    assert face_map.needs_vector([10, 11, 12]) == [10, 11, 12]
    assert face_map.resolve(10) == PENDING
    assert face_map.observe(10, _near(bob, 1)) == "Astronaut"
    assert face_map.observe(11, _near(alice, 2)) == "Grace"
    assert face_map.observe(12, carol) == UNASSIGNED
    assert [face_map.resolve(t) for t in (10, 11, 12)] == ["Astronaut", "Grace", UNASSIGNED]
    assert face_map.needs_vector([10, 11, 12]) == []  # embedded once per track


def test_a_click_records_the_targets_own_vector_and_survives_a_lost_track() -> None:
    person = _vec(7)
    face_map = FaceMap(threshold=0.5)
    face_map.assign_track(3, "Grace")
    assert face_map.resolve(3) == "Grace"  # at once, before any vector
    assert face_map.needs_vector([3]) == [3]
    assert face_map.observe(3, person) == "Grace"
    # the track ends (the person left the frame); a new track id appears later
    face_map.forget_tracks([])
    assert face_map.resolve(3) == PENDING
    assert face_map.observe(9, _near(person, 4)) == "Grace"
    assert face_map.observe(10, _vec(8)) == UNASSIGNED  # someone else is not taken


def test_reassigning_and_unassigning_a_track() -> None:
    face_map = FaceMap(threshold=0.5)
    face_map.assign_track(1, "A")
    face_map.observe(1, _vec(1))
    face_map.assign_track(1, "B")
    assert face_map.resolve(1) == "B"
    assert face_map.assignments() == [("B", 1)]
    face_map.unassign_track(1)
    assert face_map.resolve(1) == UNASSIGNED
    assert face_map.assignments() == []
