"""Many tests at once: Holm's correction within a family of tests, and how often a family of equal variants reads
"differ" without it.

Each test at level α calls two equal variants different at most about α of the time, but among 21
pairs of equal variants the chance that at least one reads "differ" is far larger. Holm's step-down
procedure (Holm 1979) keeps that chance, the family-wise error rate, at most α for any dependence
between the tests: sort the m p-values, compare the k-th smallest with α / (m − k + 1), and stop at
the first that is not below it.
"""

import itertools

import numpy as np
import pandas as pd

from bnlib.checks import check_choice, check_integer, check_number
from bnlib.studies.welch import ALPHA, SIMULATION_SEED, compare_pair, two_sided_pvalue, welch_parts

CORRECTIONS = ("none", "holm")


def holm_adjust(p_values):
    """Holm-adjusted p-values along the last axis, in the input's order: a test is rejected at level α by Holm's
    procedure exactly when its adjusted p-value is below α. (m,) -> (m,), or (draws, m) -> (draws, m)."""
    p_values = np.asarray(p_values, dtype=float)
    if p_values.shape[-1] == 0:
        return p_values.copy()
    if ((p_values < 0) | (p_values > 1)).any() or np.isnan(p_values).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p_values!r}")
    count = p_values.shape[-1]
    order = np.argsort(p_values, axis=-1, kind="stable")
    ranked = np.take_along_axis(p_values, order, axis=-1)
    scaled = np.minimum(1.0, ranked * np.arange(count, 0, -1))  # the k-th smallest (k from 0) times m − k
    adjusted = np.maximum.accumulate(scaled, axis=-1)  # step-down: never below an earlier one
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, adjusted, axis=-1)
    return result


def holm_levels(p_values, alpha=ALPHA):
    """The level at which Holm's procedure judged each test (1-D, in the input's order): a p-value below it is
    rejected, exactly as its adjusted p-value is below `alpha`. α / (m − k + 1) for the k-th smallest,
    lower where an earlier test already stopped the procedure; intervals at this level match the verdicts."""
    check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
    p_values = np.asarray(p_values, dtype=float)
    adjusted = holm_adjust(p_values)
    ranks = np.empty(len(p_values), dtype=int)
    ranks[np.argsort(p_values, kind="stable")] = np.arange(len(p_values))
    step_levels = alpha / (len(p_values) - ranks)
    with np.errstate(divide="ignore", invalid="ignore"):
        stopped = np.where(adjusted > 0, alpha * p_values / adjusted, step_levels)
    return np.minimum(step_levels, stopped)


def compare_variants(runs, metric="test_acc", alpha=ALPHA):
    """Every pair of variants compared on `metric` (a is the one with the larger mean), smallest p-value first.

    The pairs form one family: `Holm p-value` is Holm-adjusted over them, and `differs` means it is below `alpha`.
    """
    rows = []
    for first, second in itertools.combinations(runs["variant"].unique(), 2):
        row = compare_pair(runs, first, second, metric, alpha)
        rows.append(row if row["difference"] >= 0 else compare_pair(runs, second, first, metric, alpha))
    table = pd.DataFrame(rows)
    table["Holm p-value"] = holm_adjust(table["p-value"].to_numpy())
    table["differs"] = table["Holm p-value"] < alpha
    return table.sort_values("p-value", ignore_index=True)


def family_false_alarm_rate(num_variants, num_seeds, alpha=ALPHA, correction="none", draws=20_000):
    """How often at least one pair of `num_variants` equal variants (`num_seeds` runs each) reads "differ" when
    every pair is compared with Welch's test at level `alpha`, without or with Holm's correction. Simulated
    from SIMULATION_SEED: the pairs share variants, so the tests are not independent."""
    check_integer("num_variants", num_variants, minimum=2)
    num_seeds = check_integer("num_seeds", num_seeds, minimum=2)
    check_choice("correction", correction, CORRECTIONS)
    check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
    rng = np.random.default_rng(SIMULATION_SEED)
    grids = rng.standard_normal((check_integer("draws", draws, 100), num_variants, num_seeds))
    p_values = np.stack(
        [two_sided_pvalue(*welch_parts(grids[:, first], grids[:, second]))
         for first, second in itertools.combinations(range(num_variants), 2)],
        axis=-1,
    )  # (draws, pairs)  # fmt: skip
    if correction == "holm":
        p_values = holm_adjust(p_values)
    return float((p_values < alpha).any(axis=-1).mean())
