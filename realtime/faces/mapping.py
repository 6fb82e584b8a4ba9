"""One identity per person: which source each face in the frame wears.

An assignment pairs a person with a source (by the source's name). A person is known by
reference recognition vectors: a reference photo (``--map REF.jpg=SOURCE.jpg``) or the
target's own face, embedded the first time after a click assigned its track. Each track
is embedded once (off the frame path, by the pipeline's swap worker) and matched against
every assignment's references; the tracker carries the answer from then on, and a person
lost and re-found under a new track id is re-identified by those vectors.

Faces with no assignment follow ``unassigned``: ``"source"`` (wear the active source) or
``"leave"`` (not swapped). A track not yet embedded is ``PENDING`` and treated the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime.faces.identity import l2_normalize
from realtime.types import Detection

log = logging.getLogger(__name__)

UNASSIGNED_POLICIES: tuple[str, ...] = ("source", "leave")
PENDING = "pending"
UNASSIGNED = "unassigned"
# Assignments a click can make besides a gallery name: the person wears whichever source
# is active, or is never swapped (whatever ``unassigned`` says). Not valid file names.
ACTIVE_SOURCE = "<active source>"
LEAVE_ALONE = "<leave alone>"
# How many of a person's own vectors are kept (the first ones, plus the newest).
MAX_REFERENCES = 8


@dataclass(frozen=True)
class MapView:
    """What the face plan needs of a map, read once per frame.

    ``resolved``: track id → the source name it wears, or ``PENDING`` / ``UNASSIGNED``
    (a track missing here is ``PENDING``); ``needs``: tracks the map wants recognised.
    An inactive map (nothing assigned) makes the plan ignore the rest."""

    active: bool = False
    unassigned: str = "source"
    resolved: Mapping[int, str] = field(default_factory=dict)
    needs: frozenset[int] = frozenset()


NO_MAP = MapView()


@dataclass
class Assignment:
    source_name: str
    references: list[np.ndarray] = field(default_factory=list)
    # ``match:REF``'s person: known by the photo at ``photo`` once its face is embedded
    photo: str | None = None
    failed: str | None = None  # why the photo gave no vector (no face, unreadable)


def parse_map(entries: Iterable[str]) -> list[tuple[str, str]]:
    """``["REF.jpg=SOURCE.jpg", ...]`` → ``[(ref, source), ...]``; raises ``ValueError``
    naming the bad entry."""
    pairs = []
    for entry in entries:
        ref, sep, source = entry.partition("=")
        if not sep or not ref.strip() or not source.strip():
            raise ValueError(f"--map: expected REF.jpg=SOURCE.jpg, got {entry!r}")
        pairs.append((ref.strip(), source.strip()))
    return pairs


def photo_vector(photo: str, detect: Callable[[np.ndarray], Sequence[Detection]],
                 identify: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The recognition vector of the largest face in ``photo``; ``OSError`` when it
    cannot be read, ``ValueError`` when it shows no face."""
    import cv2

    from realtime.io.source_base import read_image_file

    # not cv2.imread: on Windows it cannot open a path outside the ANSI code page
    image = read_image_file(Path(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"reference photo {photo!r}: expected a readable image")
    found = list(detect(image))
    if not found:
        raise ValueError(f"reference photo {photo!r}: expected a face, found none")
    best = max(found, key=lambda d: d.area)
    return np.asarray(identify(image, best.landmarks))


def map_needed(faces_mode: str) -> bool:
    """Whether ``Settings.faces`` alone asks for a face map (``match:REF``'s person)."""
    from realtime.faces.select import parse_mode

    return parse_mode(faces_mode).kind == "match"


def check_policy(policy: str) -> str:
    if policy not in UNASSIGNED_POLICIES:
        raise ValueError(f"unassigned faces: expected one of {UNASSIGNED_POLICIES}, "
                         f"got {policy!r}")
    return policy


class FaceMap:
    """Assignments of people to sources, and each track's resolved assignment.

    Thread-safe: the process thread reads (``resolve``), the swap worker writes
    (``observe``) and the UI assigns (``assign_track``).
    """

    def __init__(self, *, threshold: float = 0.45, unassigned: str = "source") -> None:
        self.threshold = threshold
        self.unassigned = check_policy(unassigned)
        self._lock = threading.Lock()
        self._assignments: list[Assignment] = []
        self._tracks: dict[int, int | None] = {}  # track id → assignment index / none
        self._waiting: dict[int, int] = {}  # clicked tracks whose vector is not yet known

    @property
    def active(self) -> bool:
        """False while nothing is assigned: then mapping costs nothing at all."""
        return bool(self._assignments)

    def assignments(self) -> list[tuple[str, int]]:
        """(source name, number of reference vectors) per assignment."""
        with self._lock:
            return [(a.source_name, len(a.references)) for a in self._assignments]

    def add_reference(self, vector: np.ndarray, source_name: str) -> None:
        """Assign the person whose recognition vector is ``vector`` to ``source_name``."""
        with self._lock:
            self._assignments.append(Assignment(source_name, [l2_normalize(vector)]))
            self._tracks = {k: v for k, v in self._tracks.items() if v is not None}

    def assign_track(self, track_id: int, source_name: str) -> None:
        """The person on ``track_id`` wears ``source_name`` from now on (a click). Their own
        vector becomes the reference at the next ``observe`` of that track."""
        with self._lock:
            index = self._tracks.get(track_id)
            if index is not None:
                self._assignments[index].source_name = source_name
                return
            self._assignments.append(Assignment(source_name))
            index = len(self._assignments) - 1
            self._tracks[track_id] = index
            self._waiting[track_id] = index

    def unassign_track(self, track_id: int) -> None:
        """Forget the assignment the person on ``track_id`` has."""
        with self._lock:
            index = self._tracks.get(track_id)
            if index is not None:
                self._remove(index)

    def set_match_photo(self, photo: str | None) -> None:
        """``faces = match:PHOTO``: the person in ``photo`` wears the active source (one
        such entry at a time; None removes it). Their vector comes from
        ``add_photo_vector``; until then nobody matches. Setting the same photo again
        keeps what is known."""
        with self._lock:
            current = [i for i, a in enumerate(self._assignments) if a.photo is not None]
            if current and self._assignments[current[0]].photo == photo:
                return
            for index in reversed(current):
                self._remove(index)
            if photo is not None:
                self._assignments.append(Assignment(ACTIVE_SOURCE, photo=photo))

    @property
    def match_photo(self) -> str | None:
        with self._lock:
            return next((a.photo for a in self._assignments if a.photo is not None), None)

    def photos_to_embed(self) -> list[str]:
        """Entry photos whose vector is not known yet (and did not fail)."""
        with self._lock:
            return [a.photo for a in self._assignments
                    if a.photo is not None and not a.references and a.failed is None]

    def add_photo_vector(self, photo: str, vector: np.ndarray) -> None:
        """The recognition vector of the face in an entry's photo: tracks seen so far
        are recognised again against it."""
        with self._lock:
            for a in self._assignments:
                if a.photo == photo:
                    a.references = [l2_normalize(vector)]
                    a.failed = None
            self._tracks = {k: v for k, v in self._tracks.items() if v is not None}

    def photo_failed(self, photo: str, reason: str) -> None:
        """The photo gave no vector: not tried again, nobody matches it."""
        with self._lock:
            for a in self._assignments:
                if a.photo == photo:
                    a.failed = reason

    def failures(self) -> list[str]:
        with self._lock:
            return [f"{a.photo}: {a.failed}" for a in self._assignments if a.failed]

    def follow_settings(self, faces_mode: str, unassigned: str | None = None) -> None:
        """``Settings.faces`` (``match:REF`` is the match entry; any other mode has none)
        and, when given, ``unassigned_faces``."""
        from realtime.faces.select import parse_mode

        if unassigned is not None:
            self.unassigned = check_policy(unassigned)
        self.set_match_photo(parse_mode(faces_mode).reference)

    def worn(self, track_ids: Iterable[int]) -> dict[int, str]:
        """Track id → the source name it wears, for the tracks an entry assigns."""
        names = {t: self.resolve(t) for t in track_ids}
        return {k: v for k, v in names.items() if v not in (PENDING, UNASSIGNED)}

    def embed_photos(self, detect: Callable[[np.ndarray], Sequence[Detection]],
                     encoder: Any) -> None:
        """Embed entry photos not embedded yet (``match:REF``; off the frame path). A photo
        without a usable face is reported once and matches nobody: the stream goes on."""
        for photo in self.photos_to_embed():
            if encoder is None:
                self.photo_failed(photo, "needs an identity encoder; the model has none")
                continue
            try:
                self.add_photo_vector(photo, photo_vector(photo, detect, encoder.identify))
            except (OSError, ValueError) as exc:
                log.error("faces match: %s", exc)
                self.photo_failed(photo, str(exc))

    def identify(self, image: np.ndarray, faces: Sequence[tuple[int, np.ndarray]],
                 encoder: Any) -> None:
        """Each (track, landmarks)'s own recognition vector, matched (once per track)."""
        if encoder is None:
            return
        for track_id, landmarks in faces:
            self.observe(track_id, encoder.identify(image, landmarks))

    def view(self, track_ids: Iterable[int]) -> MapView:
        """A consistent snapshot of the map for these tracks (for the face plan)."""
        ids = list(track_ids)
        with self._lock:
            if not self._assignments:
                return MapView(False, self.unassigned)
            resolved = {t: self._resolve(t) for t in ids}
            needs = frozenset(t for t in ids if t not in self._tracks or t in self._waiting)
            return MapView(True, self.unassigned, resolved, needs)

    def _remove(self, index: int) -> None:
        """Drop assignment ``index``; its tracks become unassigned. Hold the lock."""
        del self._assignments[index]
        self._tracks = {k: (None if v == index else v if v is None or v < index else v - 1)
                        for k, v in self._tracks.items()}
        self._waiting = {k: v if v < index else v - 1 for k, v in self._waiting.items()
                         if v != index}

    def clear(self) -> None:
        with self._lock:
            self._assignments.clear()
            self._tracks.clear()
            self._waiting.clear()

    def resolve(self, track_id: int) -> str:
        """The source name ``track_id`` wears, or ``PENDING`` / ``UNASSIGNED``."""
        with self._lock:
            return self._resolve(track_id)

    def _resolve(self, track_id: int) -> str:
        if track_id not in self._tracks:
            return PENDING
        index = self._tracks[track_id]
        return UNASSIGNED if index is None else self._assignments[index].source_name

    def needs_vector(self, track_ids: Iterable[int]) -> list[int]:
        """Tracks to embed: unseen ones, and clicked ones whose vector is not known yet."""
        with self._lock:
            if not self._assignments:
                return []
            return [t for t in track_ids if t not in self._tracks or t in self._waiting]

    def observe(self, track_id: int, vector: np.ndarray) -> str:
        """A track's own recognition vector: record it for a clicked track, or match it
        against every assignment (best cosine ≥ threshold). Returns ``resolve``'s answer."""
        v = l2_normalize(vector)
        with self._lock:
            waiting = self._waiting.pop(track_id, None)
            if waiting is not None:
                self._remember(waiting, v)
                return self._assignments[waiting].source_name
            best, best_score = None, self.threshold
            for index, assignment in enumerate(self._assignments):
                if not assignment.references:
                    continue
                score = max(float(r @ v) for r in assignment.references)
                if score >= best_score:
                    best, best_score = index, score
            self._tracks[track_id] = best
            if best is None:
                return UNASSIGNED
            self._remember(best, v)
            return self._assignments[best].source_name

    def forget_tracks(self, live: Iterable[int]) -> None:
        """Drop tracks the tracker has ended (their people stay assigned by vector)."""
        keep = set(live)
        with self._lock:
            self._tracks = {k: v for k, v in self._tracks.items() if k in keep}
            self._waiting = {k: v for k, v in self._waiting.items() if k in keep}

    def _remember(self, index: int, vector: np.ndarray) -> None:
        refs = self._assignments[index].references
        if len(refs) < MAX_REFERENCES:
            refs.append(vector)
        else:
            refs[-1] = vector  # the first views stay, the newest replaces the last
