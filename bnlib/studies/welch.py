"""Welch's t-test between variants of a grid of runs: the test, how often it errs, its power, where one more run lands.

Two variants differ when Welch's two-sample t-test rejects "equal means" at level ALPHA: the
difference of the means is compared with its own standard error, sqrt(s_a²/n_a + s_b²/n_b), which
shrinks as seeds are added, on Welch–Satterthwaite's degrees of freedom (the same numbers as
`scipy.stats.ttest_ind(..., equal_var=False)`). With no second variant the same test compares one
variant's mean with 0 (a one-sample t-test), as for "the train − validation gap is 0".
"""

import numpy as np
from scipy import optimize, stats

from bnlib.checks import check_integer, check_number

ALPHA = 0.05  # the test's level: at most about this often are two equal variants called different
POWER = 0.8  # the chance of detecting a difference that `detectable_difference` reports
SIMULATION_SEED = 0  # every simulated answer below draws from this seed: the same answer on every call


def check_runs(runs, metric):
    """Raise ValueError unless `metric` is a column of `runs` and every variant has at least 2 seeds."""
    if metric not in runs.columns:
        raise ValueError(f"metric must be a column of runs, got {metric!r}; columns: {list(runs.columns)}")
    counts = runs.groupby("variant", sort=False).size()
    if (counts < 2).any():
        raise ValueError(f"every variant needs at least 2 seeds to measure a spread, got {counts.to_dict()}")


def variant_values(runs, variant, metric):
    """The `metric` of every run of `variant`, as a float array."""
    values = runs.loc[runs["variant"] == variant, metric].to_numpy(float)
    if len(values) == 0:
        raise ValueError(f"variant {variant!r} is not in runs; variants: {list(runs['variant'].unique())}")
    return values


def welch_parts(sample_a, sample_b=None):
    """(difference, standard error, degrees of freedom) of mean(a) − mean(b), or of mean(a) − 0 without `sample_b`.

    Samples are (..., n) arrays, one experiment per leading index: (draws, n) -> three (draws,) arrays.
    """
    sample_a = np.asarray(sample_a, dtype=float)
    n_a = sample_a.shape[-1]
    v_a = sample_a.var(axis=-1, ddof=1) / n_a
    if sample_b is None:
        return sample_a.mean(axis=-1), np.sqrt(v_a), np.full_like(v_a, n_a - 1.0)
    sample_b = np.asarray(sample_b, dtype=float)
    n_b = sample_b.shape[-1]
    v_b = sample_b.var(axis=-1, ddof=1) / n_b
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))  # Welch–Satterthwaite
    return sample_a.mean(axis=-1) - sample_b.mean(axis=-1), np.sqrt(v_a + v_b), df


def two_sided_pvalue(difference, standard_error, df):
    """p-value of "the true difference is 0" for t = difference / standard_error on `df` degrees of freedom."""
    return 2 * stats.t.sf(np.abs(difference / standard_error), df)


def confidence_interval(comparison, level):
    """(low, high): the two-sided `level` confidence interval of `compare_pair`'s difference."""
    half_width = float(stats.t.ppf((1 + level) / 2, comparison["df"]) * comparison["standard error"])
    return comparison["difference"] - half_width, comparison["difference"] + half_width


def compare_pair(runs, variant_a, variant_b, metric="test_acc", alpha=ALPHA):
    """Welch's t-test of a vs b on `metric` (b None: a's mean vs 0): a dict with the means, the difference (a − b),
    its standard error and degrees of freedom, the (1 − alpha) confidence interval, the p-value and `differs`."""
    check_runs(runs, metric)
    check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
    sample_a = variant_values(runs, variant_a, metric)
    sample_b = None if variant_b is None else variant_values(runs, variant_b, metric)
    difference, standard_error, df = (float(part) for part in welch_parts(sample_a, sample_b))
    p_value = float(two_sided_pvalue(difference, standard_error, df))
    comparison = {
        "metric": metric,
        "a": variant_a,
        "b": variant_b,
        "mean a": float(sample_a.mean()),
        "mean b": 0.0 if sample_b is None else float(sample_b.mean()),
        "difference": difference,
        "standard error": standard_error,
        "df": df,
        "p-value": p_value,
        "differs": bool(p_value < alpha),
        "alpha": alpha,
    }
    comparison["ci low"], comparison["ci high"] = confidence_interval(comparison, 1 - alpha)
    return comparison


def pooled_std(runs, metric="test_acc"):
    """The seed-to-seed standard deviation pooled over all variants: sqrt(Σ (n_i − 1) s_i² / Σ (n_i − 1)).

    One spread estimated from every run, on Σ (n_i − 1) degrees of freedom, where each variant's own
    std rests on n_i − 1 (2 with 3 seeds) and is itself uncertain.
    """
    check_runs(runs, metric)
    grouped = runs.groupby("variant", sort=False)[metric]
    dfs = grouped.size() - 1
    return float(np.sqrt((dfs * grouped.var(ddof=1)).sum() / dfs.sum()))


def simulate_experiments(shift, num_seeds, draws, one_sample=False):
    """`welch_parts` of `draws` simulated experiments: `num_seeds` runs per variant with std 1, the first variant's
    mean `shift` above the second's (above 0 with `one_sample`). Drawn from SIMULATION_SEED."""
    num_seeds = check_integer("num_seeds", num_seeds, minimum=2)
    rng = np.random.default_rng(SIMULATION_SEED)
    first = rng.standard_normal((check_integer("draws", draws, 100), num_seeds))
    second = None if one_sample else rng.standard_normal(first.shape)
    return welch_parts(first + shift, second)


def detection_probability(difference, std, num_seeds, alpha=ALPHA, draws=20_000, one_sample=False):
    """How often Welch's test at level `alpha` rejects when the true difference is `difference`: two variants,
    `num_seeds` runs each, seed-to-seed `std` (one variant against 0 with `one_sample`). With difference 0
    it is the test's real false-alarm rate."""
    check_number("std", std, 0, None, low_open=True)
    parts = simulate_experiments(difference / std, num_seeds, draws, one_sample)
    return float((two_sided_pvalue(*parts) < alpha).mean())


def false_alarm_rate(num_seeds, alpha=ALPHA, draws=200_000):
    """How often Welch's test calls two equal variants different, `num_seeds` runs each: at most about `alpha`
    (with few seeds Welch's degrees of freedom make it cautious: about 3.5 % at 5 % with 3 seeds)."""
    return detection_probability(0.0, 1.0, num_seeds, alpha, draws)


def detectable_difference(std, num_seeds, alpha=ALPHA, power=POWER, draws=20_000):
    """The smallest true difference that Welch's test detects with probability `power` at level `alpha`,
    for two variants with `num_seeds` runs each and the same seed-to-seed `std`.

    Simulated (`detection_probability`): Welch's test has no closed-form power, and with 2 seeds it
    needs far more than Student's formula says.
    """
    check_number("std", std, 0, None)
    check_integer("num_seeds", num_seeds, minimum=2)
    check_number("power", power, alpha, 1, low_open=True, high_open=True)
    if std == 0:
        return 0.0

    def missing_power(shift):  # shift: the true difference in units of std
        return detection_probability(shift, 1.0, num_seeds, alpha, draws) - power

    return optimize.brentq(missing_power, 0.0, 100.0, xtol=1e-4) * std


def prediction_factor(num_seeds, level=1 - ALPHA):
    """t(level, n − 1) · sqrt(1 + 1/n): `prediction_interval`'s half-width in stds (about 5 with 3 runs, 3 with 5)."""
    num_seeds = check_integer("num_seeds", num_seeds, minimum=2)
    check_number("level", level, 0, 1, low_open=True, high_open=True)
    return stats.t.ppf((1 + level) / 2, num_seeds - 1) * np.sqrt(1 + 1 / num_seeds)


def prediction_interval(values, level=1 - ALPHA):
    """(low, high): where one more run lands with probability `level`, from these runs (normal spread assumed).

    mean ± t(level, n − 1) · std · sqrt(1 + 1/n): wider than mean ± 2 std when there are few runs.
    """
    values = np.asarray(values, dtype=float)
    check_integer("len(values)", len(values), minimum=2)
    half_width = prediction_factor(len(values), level) * values.std(ddof=1)
    return values.mean() - half_width, values.mean() + half_width
