"""Which face the slow swap worker refreshes next.

``stalest`` takes faces in turn: a face with no texture of its own (or one of another
source) first, then the one whose texture is oldest, so each of N faces is refreshed
every N swaps whatever it does. ``error`` spends the generator where the face changes:
after the faces with no texture, the face whose shown texture fits the current face
worst (the flow texture's ``Motion.unexplained``, in grey levels, times the face's area
on screen) goes first. A still face is then refreshed rarely, but never waits more than
``WAIT_BOUND`` times its fair turn: between two of its refreshes at most ``WAIT_BOUND`` × N
swap jobs for N faces (the worst fit is taken only when every other face can still be
served in time after it, soonest deadline first; otherwise the soonest deadline goes).
The bound holds among faces that have a texture (a new face still goes first). ``auto``
is ``error`` when the flow texture is on (its misfit comes with the flow at no extra
cost), ``stalest`` otherwise; ``error`` asked for with the static texture reads the plain
misfit (``motion.plain_misfit``: the texture's source crop against the current crop, at
``MISFIT_SIZE``), measured only then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from realtime.config import Settings
from realtime.frame.textures import Texture, TextureStore

REFRESH_ORDERS: tuple[str, ...] = ("auto", "stalest", "error")
# The most a face waits, in multiples of its fair turn (N swap jobs for N faces).
WAIT_BOUND = 2.0


def refresh_order_in_effect(setting: str, texture_mode: str) -> str:
    """``"stalest"`` or ``"error"`` for a ``Settings.refresh_order`` value and the texture
    mode in effect (``static`` or ``flow``)."""
    if setting not in REFRESH_ORDERS:
        raise ValueError(f"refresh_order: expected one of {REFRESH_ORDERS}, got {setting!r}")
    if setting == "auto":
        return "error" if texture_mode == "flow" else "stalest"
    return setting


def plain_misfit_wanted(settings: Settings) -> bool:
    """Whether the static texture's plain misfit is measured: only while the error order
    is asked for (the flow texture measures its own)."""
    return settings.refresh_order == "error"


def screen_area(aligned: Any) -> float:
    """The face's area on screen relative to its aligned crop: the aligned matrix maps
    the frame to the crop, so a face k times larger has a determinant 1/k²."""
    matrix = np.asarray(aligned.matrix, np.float64)
    det = abs(float(matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]))
    return 1.0 / det if det > 1e-12 else 0.0


class RefreshPlanner:
    """Picks the face for each swap job and counts, per track, the jobs it sat out.

    Used by the process thread only (it submits the jobs)."""

    def __init__(self, bound: float = WAIT_BOUND) -> None:
        if bound < 1.0:
            raise ValueError(f"bound: expected >= 1 (a multiple of the fair turn), got {bound}")
        self.bound = bound
        self.waited: dict[int, int] = {}  # track → swap jobs sat out since its last one

    def retain(self, live: Sequence[int] | set[int]) -> None:
        keep = set(live)
        for track in [t for t in self.waited if t not in keep]:
            del self.waited[track]

    def pick(self, store: TextureStore, track_ids: Sequence[int], sources: Sequence[Any],
             aligned: Sequence[Any], misfits: Mapping[int, tuple[Texture, float]],
             settings: Settings, texture_mode: str) -> int:
        """The index into ``track_ids`` of the face to swap next, in the order
        ``settings.refresh_order`` asks for with the texture mode in effect (``sources``:
        the faces' ``SourceFace``s); counted as served."""
        order = refresh_order_in_effect(settings.refresh_order, texture_mode)
        return self.pick_in_order(store, track_ids, [s.name for s in sources], aligned,
                                  misfits, order)

    def pick_in_order(self, store: TextureStore, track_ids: Sequence[int],
                      source_names: Sequence[str], aligned: Sequence[Any],
                      misfits: Mapping[int, tuple[Texture, float]], order: str) -> int:
        """``pick`` with the order given: ``stalest`` or ``error``."""
        fair = store.refresh_order(track_ids, source_names)
        chosen = fair[0]
        if order == "error" and len(track_ids) > 1:
            chosen = self._by_error(store, track_ids, source_names, aligned, misfits, fair)
        elif order not in ("stalest", "error"):
            raise ValueError(f"order: expected stalest or error, got {order!r}")
        for i, track in enumerate(track_ids):
            self.waited[track] = 0 if i == chosen else self.waited.get(track, 0) + 1
        return chosen

    def _by_error(self, store: TextureStore, track_ids: Sequence[int],
                  source_names: Sequence[str], aligned: Sequence[Any],
                  misfits: Mapping[int, tuple[Texture, float]], fair: list[int]) -> int:
        first = fair[0]
        own = store.get(track_ids[first])
        if own is None or own.source_name != source_names[first]:
            return first  # a face with no texture of its own still goes first
        # each face may still sit out ``slack`` jobs and keep within the bound
        limit = int(self.bound * len(track_ids)) - 1
        slack = {i: limit - self.waited.get(track_ids[i], 0) for i in fair}

        def keeps_bound(chosen: int) -> bool:
            # the others, served after it soonest deadline first, each in time
            rest = sorted(slack[i] for i in fair if i != chosen)
            return all(offset <= s for offset, s in enumerate(rest, start=1))

        def score(i: int) -> float:
            # the misfit of the texture shown now; none measured yet (a texture that has
            # just arrived, or a plain one): it fits as well as anything can
            track = track_ids[i]
            measured = misfits.get(track)
            if measured is None or measured[0] is not store.get(track):
                return 0.0
            return measured[1] * screen_area(aligned[i])

        # the worst fit first; ties (nothing measured) in the fair order; the soonest
        # deadline when the worst fit would make another face wait past the bound
        rank = {i: r for r, i in enumerate(fair)}
        worst = max(fair, key=lambda i: (score(i), -rank[i]))
        return worst if keeps_bound(worst) else min(fair, key=lambda i: (slack[i], rank[i]))
