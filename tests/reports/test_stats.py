"""Intervals and p-values against published values, not against our own formulas."""

from __future__ import annotations

import math

import pytest

from reports.stats import newcombe_interval, two_proportion_p_value, wilson_interval

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
