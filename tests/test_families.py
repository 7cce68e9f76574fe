"""bnlib.studies.families: Holm's correction, and how often a family of equal variants reads "differ"."""

import itertools

import numpy as np
import pytest
from scipy import stats

from bnlib.studies.families import compare_variants, family_false_alarm_rate, holm_adjust, holm_levels
from bnlib.studies.summaries import describe_comparisons
from tests.support.significance_runs import handmade_runs


def test_holm_on_the_textbook_example():
    # Holm (1979) as usually taught: four p-values at alpha = 0.05. Sorted 0.005, 0.01, 0.03, 0.04 are compared
    # with 0.05/4, 0.05/3, 0.05/2, 0.05/1: the first two pass, 0.03 > 0.025 stops the procedure.
    # Adjusted by hand: 4 * 0.005 = 0.02, 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(1 * 0.04, 0.06) = 0.06.
    p_values = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjust(p_values) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert (holm_adjust(p_values) < 0.05).tolist() == [True, False, False, True]
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm_adjust([0.02]) == pytest.approx([0.02])  # one test: nothing to correct


def test_holm_rejects_exactly_where_the_step_down_procedure_does():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p_values = rng.uniform(0, 0.2, rng.integers(1, 8))
        rejected, stopped = np.zeros(len(p_values), bool), False
        for rank, index in enumerate(np.argsort(p_values)):  # the procedure written out
            stopped = stopped or p_values[index] >= 0.05 / (len(p_values) - rank)
            rejected[index] = not stopped
        assert ((holm_adjust(p_values) < 0.05) == rejected).all()
        assert ((p_values < holm_levels(p_values)) == rejected).all()  # the judged level agrees with the verdict
    many = rng.uniform(0, 1, (50, 6))
    assert holm_adjust(many) == pytest.approx(np.array([holm_adjust(row) for row in many]))  # row by row
    with pytest.raises(ValueError, match="p_values"):
        holm_adjust([0.5, 1.5])


def test_compare_variants_is_one_family():
    table = compare_variants(handmade_runs())
    assert len(table) == 3 and (table["difference"] >= 0).all()
    assert set(zip(table["a"], table["b"], strict=True)) == {("a", "b"), ("c", "b"), ("c", "a")}
    assert table["p-value"].is_monotonic_increasing
    assert table["Holm p-value"].to_numpy() == pytest.approx(holm_adjust(table["p-value"].to_numpy()))
    assert table["differs"].tolist() == [True, True, False]
    text = describe_comparisons(table)
    assert text.startswith("2 of 3 pairs differ at the 5% level after Holm's correction over the 3 pairs (2 before it")
    assert "c vs a (+0.10" in text


def test_21_pairs_of_equal_variants_read_differ_far_more_often_than_one_pair():
    rng = np.random.default_rng(5)  # other draws than the function's own
    grids = rng.standard_normal((20_000, 7, 3))
    p_values = np.stack([stats.ttest_ind(grids[:, i], grids[:, j], axis=1, equal_var=False).pvalue
                         for i, j in itertools.combinations(range(7), 2)], axis=1)  # fmt: skip
    simulated = (p_values < 0.05).any(axis=1).mean()
    rate = family_false_alarm_rate(7, 3)
    assert rate == pytest.approx(simulated, abs=0.015) and rate == pytest.approx(0.37, abs=0.02)  # the issue's ~36 %
    assert rate < 1 - (1 - 0.05) ** 21  # pairs share variants and Welch is cautious: below the independent bound
    assert family_false_alarm_rate(7, 3, correction="holm") <= 0.05  # Holm keeps it at most alpha
    assert family_false_alarm_rate(2, 3) == pytest.approx(0.0345, abs=0.004)  # one pair: Welch's own rate
    with pytest.raises(ValueError, match="correction"):
        family_false_alarm_rate(7, 3, correction="bonferroni")
