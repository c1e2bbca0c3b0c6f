"""Intervals and p-values against published values, not against our own formulas."""

from __future__ import annotations

import math

import pytest

from reports.stats import newcombe_interval, two_proportion_p_value, wilson_interval, winner_test

# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (score interval without
# continuity correction): (k1, n1, k2, n2) -> the 95% interval for p1 - p2, to 4 places.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),  # (a)
    ((9, 10, 3, 10), (0.1705, 0.8090)),  # (b)
    ((5, 56, 0, 29), (-0.0381, 0.1926)),  # (d)
    ((0, 10, 0, 20), (-0.1611, 0.2775)),  # (e)
    ((0, 10, 0, 10), (-0.2775, 0.2775)),  # (f)
    ((10, 10, 0, 20), (0.6791, 1.0000)),  # (g)
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_interval_matches_table_ii(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    interval = newcombe_interval(*counts)
    assert interval is not None
    assert interval == pytest.approx(expected, abs=5e-5)


def test_wilson_interval_of_newcombe_1998_single_proportion() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I:
    # 81/263 -> 0.2553 to 0.3662 (method 3, Wilson score without continuity correction).
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson_interval(0, 0) is None


def test_p_value_equals_pearson_chi_squared_of_the_two_by_two_table() -> None:
    # 56/70 against 48/80: chi2 = N (ad - bc)^2 / (r1 r2 c1 c2) with one degree of freedom.
    a, b, c, d = 56, 14, 48, 32
    n = a + b + c + d
    chi2 = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    assert chi2 == pytest.approx(7.0234, abs=1e-4)
    expected = math.erfc(math.sqrt(chi2 / 2))  # P(chi2_1 > x) = erfc(sqrt(x / 2))
    assert two_proportion_p_value(56, 70, 48, 80) == pytest.approx(expected, rel=1e-12)
    assert two_proportion_p_value(56, 70, 48, 80) == pytest.approx(0.00804, abs=5e-5)


def test_p_value_undefined_without_variance_or_people() -> None:
    assert two_proportion_p_value(0, 10, 0, 20) is None
    assert two_proportion_p_value(3, 10, 0, 0) is None


# docs/metrics.md, "Content experiments: the winner test": variant a 50 clicks of 1,000 sends,
# b 75 of 1,000. Pooled 125/2000 = 0.0625, standard error sqrt(0.0625 * 0.9375 * 2/1000) =
# 0.010825, z = 0.025 / 0.010825 = 2.3094, two-sided p = 0.02092.
SUBJECT_LINES = {"a": (50, 1000), "b": (75, 1000)}


def test_the_leader_wins_at_95_percent_when_p_is_below_0_05() -> None:
    test = winner_test(SUBJECT_LINES, 95)
    assert test is not None
    assert (test.leader, round(test.p_value or 0, 5), test.significant) == ("b", 0.02092, True)


def test_the_same_counts_give_no_winner_at_99_percent() -> None:
    test = winner_test(SUBJECT_LINES, 99)
    assert test is not None
    assert (test.leader, test.significant) == ("b", False)


def test_with_three_variants_the_leader_must_beat_each_at_the_bonferroni_threshold() -> None:
    # b beats a (p = 0.0209 < 0.05 / 2) but not c (60 of 1,000: p = 0.1813).
    test = winner_test({**SUBJECT_LINES, "c": (60, 1000)}, 95)
    assert test is not None
    assert (test.leader, round(test.p_value or 0, 4), round(test.threshold, 4)) == (
        "b",
        0.1813,
        0.025,
    )
    assert not test.significant


def test_no_test_while_a_variant_has_no_sends() -> None:
    assert winner_test({"a": (3, 10), "b": (0, 0)}, 95) is None


def test_no_winner_when_nobody_succeeded_in_either_variant() -> None:
    test = winner_test({"a": (0, 500), "b": (0, 500)}, 95)
    assert test is not None
    assert (test.p_value, test.significant) == (None, False)
