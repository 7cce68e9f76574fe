"""bnlib.studies.equivalence: TOST against a margin, its interval, and the seeds that would resolve a claim."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnlib.studies.equivalence import (
    equivalence_probability,
    equivalence_test,
    seeds_to_detect,
    seeds_to_resolve,
)
from bnlib.studies.welch import compare_pair, detection_probability


def pair(values_a, values_b):
    runs = pd.DataFrame({"variant": ["a"] * len(values_a) + ["b"] * len(values_b), "test_acc": values_a + values_b})
    return compare_pair(runs, "a", "b")


def test_tost_is_two_one_sided_welch_tests():
    values_a, values_b = [97.0, 97.2, 97.4, 97.1], [97.1, 97.3, 97.5]
    result = equivalence_test(pair(values_a, values_b), margin=0.5)
    a, b = np.array(values_a), np.array(values_b)
    above_minus = stats.ttest_ind(a + 0.5, b, equal_var=False, alternative="greater").pvalue  # H0: diff <= -0.5
    below_plus = stats.ttest_ind(a - 0.5, b, equal_var=False, alternative="less").pvalue  # H0: diff >= +0.5
    assert result["equivalence p-value"] == pytest.approx(max(above_minus, below_plus), rel=1e-9)


# Fixed numbers, three seeds each (std of a, b: 0.1 or 0.2), margin 0.5 points:
#   equal:      -0.05 apart, se 0.082, df 4: 90 % interval [-0.22, +0.12], inside ±0.5
#   different:  +1.10 apart, se 0.129: the interval [+0.82, +1.38] lies outside
#   close:      -0.10 apart, se 0.163, df 4: 90 % interval [-0.45, +0.25]; inside ±0.5, not inside ±0.4
CASES = {
    "equal": ([97.0, 97.1, 97.2], [97.05, 97.15, 97.25]),
    "different": ([97.0, 97.2, 97.4], [96.0, 96.1, 96.2]),
    "close": ([97.0, 97.2, 97.4], [97.1, 97.3, 97.5]),
}


@pytest.mark.parametrize(("case", "margin", "equivalent", "allowed"), [
    ("equal", 0.5, True, 0.05 + 2.132 * 0.0816),
    ("different", 0.5, False, 1.1 + stats.t.ppf(0.95, 2.94) * 0.1291),
    ("close", 0.5, True, 0.1 + 2.132 * 0.1633),
    ("close", 0.4, False, 0.1 + 2.132 * 0.1633),
])  # fmt: skip
def test_known_answers(case, margin, equivalent, allowed):
    result = equivalence_test(pair(*CASES[case]), margin)
    assert result["equivalent"] is equivalent and result["allowed"] == pytest.approx(allowed, abs=0.002)
    inside = -margin < result["interval low"] and result["interval high"] < margin
    assert inside is equivalent  # TOST at 5 % is "the 90 % interval inside ±margin"


def test_the_interval_inside_the_margin_is_the_same_as_tost_everywhere():
    rng = np.random.default_rng(0)
    for _ in range(300):
        comparison = pair(list(rng.normal(0, 0.2, 3)), list(rng.normal(rng.uniform(-0.6, 0.6), 0.2, 4)))
        result = equivalence_test(comparison, 0.5)
        assert result["equivalent"] == (result["allowed"] < 0.5)
    with pytest.raises(ValueError, match="margin"):
        equivalence_test(comparison, 0.0)


def test_equivalence_probability_and_the_seeds_that_resolve():
    assert equivalence_probability(0.0, 0.1, 30, 0.5) > 0.99  # many seeds, a tight spread, no difference
    assert equivalence_probability(0.5, 0.1, 30, 0.5) < 0.05  # a true difference at the margin: at most alpha
    seeds = seeds_to_resolve(0.1, 0.15, 0.5, alpha=0.05 / 16)
    assert equivalence_probability(0.1, 0.15, seeds, 0.5, alpha=0.05 / 16) >= 0.8
    assert equivalence_probability(0.1, 0.15, seeds - 1, 0.5, alpha=0.05 / 16) < 0.8
    assert seeds_to_resolve(0.2, 0.15, 0.5) >= seeds_to_resolve(0.0, 0.15, 0.5)  # closer to the margin: more
    assert seeds_to_resolve(0.5, 0.15, 0.5) is None  # a true difference at the margin is not equivalence
    assert seeds_to_resolve(0.45, 1.0, 0.5, max_seeds=20) is None  # more than max_seeds
    one_sample = seeds_to_resolve(0.1, 0.15, 0.5, one_sample=True)
    assert 2 <= one_sample <= seeds_to_resolve(0.1, 0.15, 0.5)  # against the number 0 one sample is enough


def test_seeds_to_detect():
    seeds = seeds_to_detect(0.3, 0.15)
    assert detection_probability(0.3, 0.15, seeds) >= 0.8 > detection_probability(0.3, 0.15, seeds - 1)
    assert seeds_to_detect(0.0, 0.15) is None
