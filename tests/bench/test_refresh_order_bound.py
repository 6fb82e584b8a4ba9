"""The schedule maths of ``bench.refresh_order_bound`` on error curves known in closed form."""

from __future__ import annotations

import pytest

from bench.refresh_order_bound import mean_over, schedule_errors


def test_an_error_growing_with_age_rewards_refreshing_the_talker() -> None:
    # e(a) = a: stalest ages G..4G (mean 2.5G), the oracle's G..2G (1.5G), and the bound's
    # G..2G and G..3G in turn, weighted by how long each interval lasts (G and 2G)
    curve = {a: float(a) for a in range(0, 400)}
    errors = schedule_errors(curve, 60)
    assert errors["stalest"] == pytest.approx(149.5)
    assert errors["oracle"] == pytest.approx(89.5)
    assert errors["bounded"] == pytest.approx((89.5 + 2 * 119.5) / 3)
    assert errors["oracle"] < errors["bounded"] < errors["stalest"]


def test_an_error_saturated_beyond_the_generator_time_leaves_no_order_any_gain() -> None:
    # a face that decorrelates faster than the generator: every order's texture is as bad
    curve = {a: min(a, 10) * 1.0 for a in range(0, 400)}
    errors = schedule_errors(curve, 30)
    assert errors["stalest"] == errors["bounded"] == errors["oracle"] == 10.0


def test_ages_outside_the_curve_are_refused() -> None:
    with pytest.raises(ValueError, match="no age measured"):
        mean_over({3: 1.0, 6: 2.0}, 30, 60)
