"""The face plan: modes, the clicked person, the face map (match: entries included), caps."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.faces.mapping import (
    ACTIVE_SOURCE,
    LEAVE_ALONE,
    NO_MAP,
    PENDING,
    UNASSIGNED,
    FaceMap,
    MapView,
)
from realtime.faces.plan import FacePlan, plan_faces
from realtime.types import Detection, Face, SourceFace

ACTIVE = SourceFace("active", (), {})
ALICE = SourceFace("alice", (), {})
BANK = (ACTIVE, ALICE)


def _face(track: int, size: float, x: float = 0.0) -> Face:
    box = np.array([x, 0.0, x + size, size], np.float32)
    points = np.array([[x + size * u, size * v] for u, v in
                       ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))],
                      np.float32)
    return Face(track, Detection(box, 0.9, points))


FACES = [_face(1, 100, 0), _face(2, 300, 200), _face(3, 200, 600)]


def _plan(faces: list[Face] = FACES, **kw: object) -> FacePlan:
    args: dict[str, object] = {"mode": "all", "max_faces": 4, "active": ACTIVE,
                               "sources": BANK}
    args.update(kw)
    return plan_faces(faces, **args)  # type: ignore[arg-type]


def test_modes_without_a_map() -> None:
    assert _plan().track_ids == (1, 2, 3)
    assert _plan().sources == (ACTIVE, ACTIVE, ACTIVE)
    assert _plan(mode="largest").track_ids == (2,)
    assert _plan(max_faces=2).track_ids == (2, 3)  # the largest two, frame order kept
    assert _plan(only_track=3).track_ids == (3,)
    assert _plan(active=None) == FacePlan()
    assert _plan(faces=[]).faces == ()
    # match: with its person not known yet swaps nobody (not every face)
    assert _plan(mode="match:/ref.jpg").faces == ()


def test_the_map_assigns_people_and_the_rest_follow_the_policy() -> None:
    view = MapView(True, "source", {1: "alice", 2: UNASSIGNED}, frozenset({3}))
    plan = _plan(face_map=view)
    assert plan.track_ids == (1, 2, 3)
    assert [s.name for s in plan.sources] == ["alice", "active", "active"]
    assert [f.track_id for f in plan.identify] == [3]
    leave = MapView(True, "leave", {1: "alice", 2: UNASSIGNED}, frozenset())
    assert _plan(face_map=leave).track_ids == (1,)
    clicks = MapView(True, "leave", {1: LEAVE_ALONE, 2: ACTIVE_SOURCE, 3: "gone"})
    assert _plan(face_map=clicks).track_ids == (2,)  # "gone" names no source: left alone
    # no active source (``swap --map`` without ``--source``): mapped people only
    assert _plan(face_map=view, active=None).track_ids == (1,)


def test_match_leaves_everyone_but_the_reference_person_alone() -> None:
    """match: is a map entry wearing the active source; the map's own policy (source)
    does not apply to the other faces."""
    view = MapView(True, "source", {1: UNASSIGNED, 2: ACTIVE_SOURCE, 3: PENDING})
    plan = _plan(mode="match:/ref.jpg", face_map=view)
    assert plan.track_ids == (2,) and plan.sources == (ACTIVE,)


def test_the_cap_keeps_assigned_people_first_then_the_largest() -> None:
    view = MapView(True, "source", {1: "alice", 2: UNASSIGNED, 3: UNASSIGNED})
    assert _plan(face_map=view, max_faces=2).track_ids == (1, 2)
    view = MapView(True, "leave", {1: LEAVE_ALONE, 2: UNASSIGNED, 3: "alice"})
    assert _plan(face_map=view, max_faces=1).track_ids == (3,)


def test_a_plan_needs_one_source_per_face() -> None:
    with pytest.raises(ValueError, match="one source per face"):
        FacePlan((FACES[0],), ())


def test_face_map_match_entry_is_recognised_cached_and_refound() -> None:
    """The whole path a live frame takes: the map's view → the plan → observe."""
    face_map = FaceMap(threshold=0.5, unassigned="source")
    face_map.set_match_photo("/ref.jpg")
    assert face_map.active and face_map.photos_to_embed() == ["/ref.jpg"]
    view = face_map.view([1, 2])
    assert view.needs == {1, 2}
    assert _plan(mode="match:/ref.jpg", face_map=view).faces == ()
    person, other = np.eye(512, dtype=np.float32)[:2]
    face_map.observe(1, person)  # before the photo's vector: nobody matches
    assert face_map.resolve(1) == UNASSIGNED
    face_map.add_photo_vector("/ref.jpg", person)
    assert face_map.photos_to_embed() == []
    assert face_map.view([1]).needs == {1}  # recognised again against the new vector
    face_map.observe(1, person)
    face_map.observe(2, other)
    view = face_map.view([1, 2])
    assert view.needs == frozenset()  # cached: each track is embedded once
    assert _plan(mode="match:/ref.jpg", face_map=view).track_ids == (1,)
    # lost and re-found under a new id: re-identified by its vector
    face_map.forget_tracks([2])
    face_map.observe(9, person * 0.9 + other * 0.1)
    assert face_map.resolve(9) == ACTIVE_SOURCE
    # the same photo again keeps what is known; another one replaces it; none removes it
    face_map.set_match_photo("/ref.jpg")
    assert face_map.photos_to_embed() == []
    face_map.set_match_photo("/other.jpg")
    assert face_map.match_photo == "/other.jpg" and face_map.resolve(9) == UNASSIGNED
    face_map.set_match_photo(None)
    assert not face_map.active


def test_a_photo_without_a_face_is_reported_once_and_matches_nobody() -> None:
    face_map = FaceMap()
    face_map.follow_settings("match:/nobody.jpg")

    def no_faces(image: np.ndarray) -> list[Detection]:
        return []

    class Encoder:
        def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
            raise AssertionError("no face: never embedded")

    face_map.embed_photos(no_faces, Encoder())
    assert face_map.photos_to_embed() == []
    assert len(face_map.failures()) == 1 and "/nobody.jpg" in face_map.failures()[0]
    assert NO_MAP.active is False


def test_only_match_asks_for_a_map_by_itself() -> None:
    from realtime.faces.mapping import map_needed

    assert map_needed("match:/ref.jpg") and not map_needed("all")
    assert not map_needed("largest")
