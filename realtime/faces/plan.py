"""The face plan: which tracked face wears which identity this frame, and which faces
the face map still has to recognise.

One pure function, :func:`plan_faces`, holds every rule the live pipeline applies to
faces: the ``faces`` mode (``all`` / ``largest`` / ``match:REF``), "swap only this
person" (a clicked track), the face map (people wearing identities of their own, faces
nobody assigned), and the per-frame cap. The pipeline calls it once per frame with a
snapshot of the face map (:class:`MapView`) and only wires the answer to threads.

``match:REF`` is a face-map entry (see :mod:`realtime.faces.mapping`): the person in REF
wears the active source and every other face is left alone, recognised, cached and
re-found exactly like a ``--map`` person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE, PENDING, UNASSIGNED, MapView
from realtime.faces.select import largest_faces, parse_mode
from realtime.types import Face, SourceFace

NO_MAP = MapView()


@dataclass(frozen=True)
class FacePlan:
    """``faces[i]`` wears ``sources[i]`` (frame order); ``identify``: faces whose
    recognition vector the map is waiting for (embedded off the frame path)."""

    faces: tuple[Face, ...] = ()
    sources: tuple[SourceFace, ...] = ()
    identify: tuple[Face, ...] = ()

    def __post_init__(self) -> None:
        if len(self.faces) != len(self.sources):
            raise ValueError(f"face plan: expected one source per face, got "
                             f"{len(self.sources)} for {len(self.faces)} faces")

    @property
    def track_ids(self) -> tuple[int, ...]:
        return tuple(f.track_id for f in self.faces)


def plan_faces(
    faces: Sequence[Face],
    *,
    mode: str,
    max_faces: int,
    active: SourceFace | None,
    sources: Sequence[SourceFace],
    face_map: MapView = NO_MAP,
    only_track: int | None = None,
) -> FacePlan:
    """The (face, source) pairs to swap this frame and the faces to recognise.

    ``mode``: ``Settings.faces``; ``active``: the selected source (None: only people a
    map entry gives a source of their own are swapped); ``sources``: every source a map
    entry may name; ``only_track``: a clicked "swap only this person". At most
    ``max_faces`` faces are swapped: people given an identity of their own first, then
    the largest (a face left alone takes no place).
    """
    kind = parse_mode(mode).kind
    if only_track is not None:
        chosen = [f for f in faces if f.track_id == only_track]
    elif kind == "largest" and faces:
        chosen = [max(faces, key=lambda f: f.detection.area)]
    else:
        chosen = list(faces)
    if not face_map.active:
        if kind == "match" or active is None:  # match: its person is not known yet
            return FacePlan()
        kept = largest_faces(chosen, max_faces)
        return FacePlan(tuple(kept), (active,) * len(kept))

    # ``match:`` leaves every face that is not the reference person alone.
    unassigned = "leave" if kind == "match" else face_map.unassigned
    identify = tuple(f for f in chosen if f.track_id in face_map.needs)
    planned: list[tuple[Face, SourceFace, bool]] = []  # (face, source, has its own)
    for face in chosen:
        name = face_map.resolved.get(face.track_id, PENDING)
        worn = _source_for(name, active, sources, unassigned)
        if worn is not None:
            planned.append((face, worn, name not in (PENDING, UNASSIGNED)))
    if len(planned) > max_faces:
        ranked = sorted(planned, key=lambda p: (not p[2], -p[0].detection.area))
        keep = {id(p[0]) for p in ranked[:max_faces]}
        planned = [p for p in planned if id(p[0]) in keep]
    return FacePlan(tuple(p[0] for p in planned), tuple(p[1] for p in planned), identify)


def _source_for(name: str, active: SourceFace | None, sources: Sequence[SourceFace],
                unassigned: str) -> SourceFace | None:
    """The source a face resolved to ``name`` wears (None: left alone)."""
    if name == ACTIVE_SOURCE:
        return active
    if name == LEAVE_ALONE:
        return None
    if name not in (PENDING, UNASSIGNED):
        for src in sources:
            if src.name == name:
                return src
        # a map entry naming a source no longer in the bank: unassigned
    return active if unassigned == "source" else None
