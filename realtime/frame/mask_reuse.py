"""Which tracked faces need a fresh parsing mask on this swap (the rest reuse theirs).

The parsing mask lives in aligned-crop space, where a webcam face is nearly still: the
alignment cancels where the head is, how large and how tilted. What is left (turning,
talking, a hand) changes the mask slowly next to the swap interval (bench/mask_drift.py
measures it on a real clip). On a CPU the parser costs about half a swap per face, so
parsing on every swap would cut the texture refresh by a third; instead each track keeps
its newest mask and re-parses once its mask is older than the parse's own cost divided by
``PARSE_SHARE``. The parse then takes at most that share of the swap worker's time on
any machine: every few seconds on a CPU, on every swap on a GPU (milliseconds per face).

A track's first swap always parses (a new face never starts with the box mask), and a
mask is only ever handed back to the track id it was parsed for.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# The share of the swap worker's time the parser may take (re-parses paced to fit it).
PARSE_SHARE = 0.05
# Tracks remembered at most (least recently parsed forgotten first): a long session
# sees many tracks come and go, and the processor is not told which ended.
MAX_TRACKS = 32
# Per-face parse times kept for the figures (``recent_ms``).
_RECENT = 64


@dataclass(frozen=True)
class _Entry:
    mask: Any  # float32 (S, S) in [0, 1], or None (the parser found no face: box mask)
    parsed_at: float  # clock seconds


class MaskReuse:
    """Per track id: the newest parsing mask and when it was parsed. Thread-safe (the
    sync path and the async swap worker may both swap while the mode switches)."""

    def __init__(self, share: float = PARSE_SHARE, *, max_tracks: int = MAX_TRACKS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"parse share: expected in (0, 1], got {share}")
        if max_tracks < 1:
            raise ValueError(f"max tracks: expected >= 1, got {max_tracks}")
        self.share = share
        self.max_tracks = max_tracks
        self.clock = clock
        self._entries: dict[int, _Entry] = {}
        self._face_seconds: float | None = None  # EMA of one face's parse
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self.parses = 0  # faces parsed
        self.reuses = 0  # faces given a kept mask
        self._lock = threading.Lock()

    @property
    def keep_seconds(self) -> float:
        """How long a mask is reused: a face's parse time / ``share`` (0 until the first
        parse has been timed)."""
        face = self._face_seconds
        return 0.0 if face is None else face / self.share

    def plan(self, track_ids: Sequence[int | None]) -> list[tuple[bool, Any]]:
        """For each face: (parse now, kept mask). ``None`` ids (untracked faces: the
        ``swap`` CLI) always parse; so does a track seen for the first time."""
        now = self.clock()
        keep = self.keep_seconds
        out: list[tuple[bool, Any]] = []
        with self._lock:
            for track_id in track_ids:
                entry = None if track_id is None else self._entries.get(track_id)
                if entry is None or now - entry.parsed_at >= keep:
                    out.append((True, None))
                else:
                    out.append((False, entry.mask))
                    self.reuses += 1
        return out

    def store(self, track_ids: Sequence[int | None], masks: Sequence[Any],
              seconds: float) -> None:
        """Keep freshly parsed ``masks`` (one per id) and time the parse: ``seconds``
        for all of them together."""
        if len(track_ids) != len(masks):
            raise ValueError(f"store: expected one mask per track, got {len(masks)} for "
                             f"{len(track_ids)}")
        if not masks:
            return
        face = max(0.0, seconds) / len(masks)
        now = self.clock()
        with self._lock:
            self._face_seconds = face if self._face_seconds is None \
                else 0.7 * self._face_seconds + 0.3 * face
            self._recent.append(face * 1000.0)
            self.parses += len(masks)
            for track_id, mask in zip(track_ids, masks, strict=True):
                if track_id is None:
                    continue
                self._entries.pop(track_id, None)  # re-insert: newest parse last
                self._entries[track_id] = _Entry(mask, now)
            while len(self._entries) > self.max_tracks:
                del self._entries[next(iter(self._entries))]

    def forget(self, track_id: int) -> None:
        with self._lock:
            self._entries.pop(track_id, None)

    def clear(self) -> None:
        """Forget every mask (a new session, another parser)."""
        with self._lock:
            self._entries.clear()

    def recent_ms(self) -> list[float]:
        """The newest per-face parse times, in ms (for ``bench``)."""
        with self._lock:
            return list(self._recent)

    def reset_counts(self) -> None:
        with self._lock:
            self._recent.clear()
            self.parses = 0
            self.reuses = 0
