"""Statistics on counts the database already aggregated: Wilson intervals, Newcombe's interval
for a difference of proportions, the two-proportion z-test. Pure functions, standard library
only (the normal distribution through `math.erfc`), so the report needs no scipy.

References: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
inference", JASA 22:209-212; R. G. Newcombe (1998), "Interval estimation for the difference
between independent proportions: comparison of eleven methods", Statistics in Medicine
17:873-890, method 10 (the hybrid score interval, no continuity correction).
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson's score interval for `successes / trials`; None when there are no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    denominator = 1 + z2 / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def newcombe_interval(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, z: float = Z_95
) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (method 10) for p1 - p2: each proportion's Wilson
    interval, combined square-and-add. None when either group is empty."""
    first = wilson_interval(successes_1, trials_1, z)
    second = wilson_interval(successes_2, trials_2, z)
    if first is None or second is None:
        return None
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    (l1, u1), (l2, u2) = first, second
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return lower, upper


def two_proportion_p_value(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int
) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of p1 = p2 (the same as Pearson's
    chi-squared test of the 2x2 table without continuity correction). None when a group is
    empty or the pooled proportion is 0 or 1 (no variance: the test is undefined)."""
    if trials_1 <= 0 or trials_2 <= 0:
        return None
    pooled = (successes_1 + successes_2) / (trials_1 + trials_2)
    variance = pooled * (1 - pooled) * (1 / trials_1 + 1 / trials_2)
    if variance <= 0:
        return None
    z = (successes_1 / trials_1 - successes_2 / trials_2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))
