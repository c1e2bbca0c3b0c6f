"""Statistics on counts the database already aggregated: Wilson intervals, Newcombe's interval
for a difference of proportions, the two-proportion z-test. Pure functions, standard library
only (the normal distribution through `math.erfc`), so the report needs no scipy. Also the
test that picks a content experiment's winner (`winner_test`), which the send activity runs.

References: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
inference", JASA 22:209-212; R. G. Newcombe (1998), "Interval estimation for the difference
between independent proportions: comparison of eleven methods", Statistics in Medicine
17:873-890, method 10 (the hybrid score interval, no continuity correction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class WinnerTest:
    """The leading variant, the largest p-value of its comparisons with the others, and the
    threshold each comparison had to pass."""

    leader: str
    p_value: float | None
    threshold: float

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.threshold


def winner_test(counts: Mapping[str, tuple[int, int]], confidence: float) -> WinnerTest | None:
    """Does one variant beat every other? `counts` is variant -> (successes, trials).

    The leader is the variant with the highest rate (the first listed on a tie). It is compared
    with each other variant by the two-sided pooled two-proportion z-test; it wins when every
    p-value is below (1 - confidence/100) / (k - 1) for k variants (Bonferroni's correction, so
    that with three or more variants the chance of a false winner stays within 1 - confidence).
    With two variants that is simply p < 0.05 at 95%. A comparison the test cannot make
    (nobody or everybody succeeded in both) counts as p = None: no winner. None when a
    variant has no trials or there is only one variant."""
    if len(counts) < 2 or any(trials <= 0 for _, trials in counts.values()):
        return None
    leader = max(counts, key=lambda arm: counts[arm][0] / counts[arm][1])
    successes, trials = counts[leader]
    p_values = [
        two_proportion_p_value(successes, trials, *counts[other])
        for other in counts
        if other != leader
    ]
    threshold = (1 - confidence / 100) / (len(counts) - 1)
    worst = None if any(p is None for p in p_values) else max(p for p in p_values if p is not None)
    return WinnerTest(leader=leader, p_value=worst, threshold=threshold)
