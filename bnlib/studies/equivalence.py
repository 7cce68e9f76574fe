"""What can be said about "no difference": an equivalence test against a margin declared before the runs.

A t-test that does not reject does not show two variants equal; it may only lack seeds. The
equivalence test (two one-sided tests, TOST: Schuirmann 1987) turns the question round: it rejects
"the true difference is at least `margin` in size" when both one-sided Welch tests, "difference
≤ −margin" and "difference ≥ +margin", reject at level α. Equivalently, the (1 − 2α) confidence
interval of the difference (90 % at α = 5 %) lies inside ±margin.
"""

import numpy as np
from scipy import stats

from bnlib.checks import check_integer, check_number
from bnlib.studies.welch import ALPHA, POWER, detection_probability, simulate_experiments

MAX_SEEDS = 200  # `seeds_to_resolve` and `seeds_to_detect` look no further


def equivalence_interval(comparison, alpha=ALPHA):
    """(low, high): the (1 − 2·alpha) confidence interval of `compare_pair`'s difference, the interval TOST uses."""
    check_number("alpha", alpha, 0, 0.5, low_open=True, high_open=True)
    half_width = float(stats.t.ppf(1 - alpha, comparison["df"]) * comparison["standard error"])
    return comparison["difference"] - half_width, comparison["difference"] + half_width


def equivalence_pvalue(difference, standard_error, df, margin):
    """TOST's p-value: the larger of the two one-sided Welch p-values against −margin and +margin."""
    below = stats.t.sf((difference + margin) / standard_error, df)  # H0: difference <= −margin
    above = stats.t.cdf((difference - margin) / standard_error, df)  # H0: difference >= +margin
    p_value = np.maximum(below, above)
    return float(p_value) if np.ndim(p_value) == 0 else p_value


def equivalence_test(comparison, margin, alpha=ALPHA):
    """TOST on `compare_pair`'s result: a dict with the margin, the p-value, `equivalent` (p < alpha), the
    (1 − 2·alpha) interval and `allowed`, the largest difference in size that interval holds: the runs are
    equivalent within ±margin exactly when `allowed` < margin."""
    check_number("margin", margin, 0, None, low_open=True)
    p_value = equivalence_pvalue(comparison["difference"], comparison["standard error"], comparison["df"], margin)
    low, high = equivalence_interval(comparison, alpha)
    return {
        "margin": margin,
        "equivalence p-value": p_value,
        "equivalent": bool(p_value < alpha),
        "interval low": low,
        "interval high": high,
        "allowed": max(abs(low), abs(high)),
    }


def equivalence_probability(difference, std, num_seeds, margin, alpha=ALPHA, one_sample=False, draws=20_000):
    """How often TOST at level `alpha` declares equivalence within ±margin when the true difference is
    `difference`: `num_seeds` runs per variant with seed-to-seed `std` (one variant against 0 with `one_sample`)."""
    check_number("std", std, 0, None, low_open=True)
    check_number("margin", margin, 0, None, low_open=True)
    difference_, standard_error, df = simulate_experiments(difference / std, num_seeds, draws, one_sample)
    p_values = equivalence_pvalue(difference_, standard_error, df, margin / std)
    return float((p_values < alpha).mean())


def _fewest_seeds(probability, power, max_seeds):
    """The smallest n in [2, max_seeds] with probability(n) >= power (binary search: more seeds never hurt), or None."""
    if probability(max_seeds) < power:
        return None
    low, high = 2, max_seeds
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if probability(middle) >= power else (middle + 1, high)
    return low


def seeds_to_resolve(difference, std, margin, alpha=ALPHA, power=POWER, one_sample=False, max_seeds=MAX_SEEDS):
    """Seeds per variant with which TOST declares equivalence within ±margin `power` of the time, if the true
    difference is `difference` and the spread `std`; None when `max_seeds` are not enough (always so when
    |difference| >= margin: then equivalence is not there to find)."""
    check_integer("max_seeds", max_seeds, minimum=2)
    if abs(difference) >= margin:
        return None
    return _fewest_seeds(
        lambda seeds: equivalence_probability(difference, std, seeds, margin, alpha, one_sample), power, max_seeds)


def seeds_to_detect(difference, std, alpha=ALPHA, power=POWER, one_sample=False, max_seeds=MAX_SEEDS):
    """Seeds per variant with which Welch's test detects a true `difference` `power` of the time at level `alpha`
    (spread `std`; one variant against 0 with `one_sample`); None when `max_seeds` are not enough."""
    check_integer("max_seeds", max_seeds, minimum=2)
    if difference == 0:
        return None
    return _fewest_seeds(
        lambda seeds: detection_probability(difference, std, seeds, alpha, one_sample=one_sample), power, max_seeds)
