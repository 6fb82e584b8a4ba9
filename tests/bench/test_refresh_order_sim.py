"""``bench.refresh_order_sim``'s drifting light: on the one face, slow, back where it began."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.refresh_order_sim import LIGHT_PERIOD_S, LIGHT_SWING, DriftingLight


class _GreyClip:
    width, height = 160, 120

    def render(self, index: int) -> np.ndarray:
        return np.full((self.height, self.width, 3), 100, np.uint8)


def test_the_light_drifts_on_the_face_only_and_comes_back() -> None:
    clip: Any = _GreyClip()
    lit = DriftingLight(clip, np.array([20.0, 20.0, 60.0, 70.0]))
    quarter = round(30 * LIGHT_PERIOD_S / 4)  # the light's peak
    start, peak, trough = lit.render(0), lit.render(quarter), lit.render(3 * quarter)
    face, far = (45, 40), (110, 150)
    assert start[face].tolist() == [100, 100, 100]
    assert peak[face][0] == round(100 * (1 + LIGHT_SWING))
    assert trough[face][0] == round(100 * (1 - LIGHT_SWING))
    assert peak[far][0] == trough[far][0] == 100
    assert np.array_equal(lit.render(4 * quarter), start)
    # slow: one frame changes the face by at most a grey level
    assert int(np.abs(lit.render(1).astype(int) - start).max()) <= 1
