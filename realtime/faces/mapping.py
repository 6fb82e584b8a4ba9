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

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from realtime.faces.identity import l2_normalize

UNASSIGNED_POLICIES: tuple[str, ...] = ("source", "leave")
PENDING = "pending"
UNASSIGNED = "unassigned"
# Assignments a click can make besides a gallery name: the person wears whichever source
# is active, or is never swapped (whatever ``unassigned`` says). Not valid file names.
ACTIVE_SOURCE = "<active source>"
LEAVE_ALONE = "<leave alone>"
# How many of a person's own vectors are kept (the first ones, plus the newest).
MAX_REFERENCES = 8


@dataclass
class Assignment:
    source_name: str
    references: list[np.ndarray] = field(default_factory=list)


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
            if index is None:
                return
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
