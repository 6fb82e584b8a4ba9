"""The error-driven refresh order: the face the texture fits worst first (by its area),
new faces before any, and no face waiting more than the bound; ``stalest`` in turn."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.config import Settings
from realtime.frame.refresh import (
    WAIT_BOUND,
    RefreshPlanner,
    plain_misfit_wanted,
    refresh_order_in_effect,
    screen_area,
)
from realtime.frame.textures import Texture, TextureStore
from realtime.types import AlignedFace, SourceFace


def _aligned(scale: float = 1.0) -> AlignedFace:
    """A face aligned from the frame at ``scale`` (crop pixels per frame pixel)."""
    return AlignedFace(np.zeros((8, 8, 3), np.uint8),
                       np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]), 8)


def _tex(track: int, frame: int) -> Texture:
    return Texture(np.zeros((4, 4, 3), np.uint8), "a", frame, track)


def _share(order: str, jobs: int = 60) -> tuple[dict[int, int], dict[int, int]]:
    """Three faces, track 2 talking (its texture's misfit grows back to 30 grey levels
    after each refresh), tracks 1 and 3 still (misfit 1): how often each is refreshed,
    and the longest run of jobs each sat out."""
    store, planner = TextureStore(), RefreshPlanner()
    ids, names, aligned = [1, 2, 3], ["a"] * 3, [_aligned()] * 3
    misfits: dict[int, tuple[Texture, float]] = {}
    served = {t: 0 for t in ids}
    longest = {t: 0 for t in ids}
    since = {t: 0 for t in ids}
    for job in range(jobs):
        i = planner.pick_in_order(store, ids, names, aligned, misfits, order)
        track = ids[i]
        store.put(track, _tex(track, job))
        served[track] += 1
        for t in ids:
            since[t] = 0 if t == track else since[t] + 1
            longest[t] = max(longest[t], since[t])
        # the frames after the swap measure each shown texture's misfit
        for t in ids:
            shown = store.get(t)
            if shown is not None:
                misfits[t] = (shown, 30.0 if t == 2 else 1.0)
    return served, longest


def test_the_error_order_spends_the_generator_on_the_talking_face() -> None:
    fair, _ = _share("stalest")
    assert fair == {1: 20, 2: 20, 3: 20}
    served, longest = _share("error")
    assert served[2] >= 0.6 * 60, served
    # a still face is still refreshed: it never sits out more than the bound allows
    assert max(longest[1], longest[3]) <= WAIT_BOUND * 3 - 1, longest
    assert min(served[1], served[3]) >= 60 // (WAIT_BOUND * 3) - 1


def test_new_faces_first_then_the_worst_fit_weighted_by_area() -> None:
    store, planner = TextureStore(), RefreshPlanner()
    store.put(1, _tex(1, 0))
    store.put(2, _tex(2, 1))
    misfits = {1: (store.get(1), 10.0), 2: (store.get(2), 10.0)}
    names = ["a", "a", "a"]
    # track 3 has no texture: it goes first whatever the misfits
    assert planner.pick_in_order(store, [1, 2, 3], names, [_aligned()] * 3, misfits,
                                 "error") == 2
    # same misfit: the larger face on screen (aligned at a smaller scale) goes first
    planner = RefreshPlanner()
    assert planner.pick_in_order(store, [1, 2], names[:2], [_aligned(1.0), _aligned(0.5)],
                                 misfits, "error") == 1
    assert screen_area(_aligned(0.5)) == pytest.approx(4.0)
    # a misfit measured on an older texture says nothing about the new one
    store.put(2, _tex(2, 5))
    planner = RefreshPlanner()
    assert planner.pick_in_order(store, [1, 2], names[:2], [_aligned(1.0), _aligned(0.5)],
                                 misfits, "error") == 0


def test_the_order_in_effect_and_bad_values() -> None:
    assert refresh_order_in_effect("auto", "flow") == "error"
    assert refresh_order_in_effect("auto", "static") == "stalest"
    assert refresh_order_in_effect("stalest", "flow") == "stalest"
    assert refresh_order_in_effect("error", "static") == "error"
    with pytest.raises(ValueError, match="refresh_order"):
        refresh_order_in_effect("fair", "flow")
    with pytest.raises(ValueError, match="bound"):
        RefreshPlanner(bound=0.5)
    store = TextureStore()
    planner = RefreshPlanner()
    src = SourceFace("a", (), {})
    settings = Settings(refresh_order="stalest")
    assert planner.pick(store, [4, 5], [src, src], [_aligned()] * 2, {}, settings, "flow") == 0
    assert planner.waited == {4: 0, 5: 1}
    planner.retain([5])
    assert planner.waited == {5: 1}


def test_the_static_misfit_is_wanted_only_for_the_error_order() -> None:
    assert plain_misfit_wanted(Settings(refresh_order="error")) is True
    assert plain_misfit_wanted(Settings(refresh_order="auto")) is False  # stalest there
    assert plain_misfit_wanted(Settings(refresh_order="stalest")) is False
