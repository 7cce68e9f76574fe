"""What a grid of runs over seeds says: mean ± std per variant, Welch's t-test between variants, verdicts on claims.

Two variants differ when Welch's two-sample t-test (`scipy.stats.ttest_ind(..., equal_var=False)`)
rejects "equal means" at level ALPHA: the difference of the means is compared with its own
standard error, sqrt(s_a²/n_a + s_b²/n_b), which shrinks as seeds are added.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from bnlib.checks import check_choice, check_integer, check_number
from bnlib.config import FULL

# A run's numbers (History.final_numbers() and the grid's best_valid_acc) -> how tables and figures label them.
# Notebooks 01 and 02 read their tables by these labels.
METRIC_LABELS = {
    "final_train_acc": "train acc (%)",
    "final_valid_acc": "valid acc (%)",
    "best_valid_acc": "best valid acc (%)",
    "test_acc": "test acc (%)",
    "train_test_gap": "train - test gap",
    "seconds_per_epoch": "s / epoch",
    "epochs": "epochs",
}


def summarize_histories(histories):
    """One row per run of a {name: History} dict: final train/valid/test accuracy (%), gap and seconds per epoch."""
    rows = {name: history.final_numbers() for name, history in histories.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename(columns=METRIC_LABELS).round(2)

ALPHA = 0.05  # the test's level: how often two equal variants are called different
POWER = 0.8  # the chance of detecting a difference that `detectable_difference` reports
EXPECTATIONS = ("same", "higher", "lower")  # what a claim says of a vs b
VERDICTS = (
    "consistent with our runs",  # no difference claimed, and the test finds none
    "supported",  # the claimed direction, and the test rejects equal means
    "not resolved",  # a direction claimed, but the test does not reject
    "at odds with our runs",
    "no overfitting to compare",  # a gap claim where the gaps are not both positive
)


def _check_runs(runs, metric):
    if metric not in runs.columns:
        raise ValueError(f"metric must be a column of runs, got {metric!r}; columns: {list(runs.columns)}")
    counts = runs.groupby("variant", sort=False).size()
    if (counts < 2).any():
        raise ValueError(f"every variant needs at least 2 seeds to measure a spread, got {counts.to_dict()}")


def summarize_runs(runs, metrics=("test_acc", "train_test_gap"), sort_by=None):
    """Mean, std (ddof=1) and count per variant for each metric; columns `<metric> mean`, `<metric> std`, `runs`.

    Sorted by the first metric's mean, best first (largest; smallest for the gap and the time).
    """
    for metric in metrics:
        _check_runs(runs, metric)
    grouped = runs.groupby("variant", sort=False)
    columns = {f"{metric} {stat}": grouped[metric].agg(stat) for metric in metrics for stat in ("mean", "std")}
    table = pd.concat(columns, axis=1)
    table["runs"] = grouped.size()
    sort_by = sort_by or metrics[0]
    ascending = sort_by in {"train_test_gap", "seconds_per_epoch"}
    return table.sort_values(f"{sort_by} mean", ascending=ascending)


def format_mean_std(summary, metrics=("test_acc", "train_test_gap"), decimals=2):
    """`summarize_runs`' table as text, one column per metric: '97.77 ± 0.08'."""
    columns = {
        METRIC_LABELS.get(metric, metric): [
            f"{mean:.{decimals}f} ± {std:.{decimals}f}"
            for mean, std in zip(summary[f"{metric} mean"], summary[f"{metric} std"], strict=True)
        ]
        for metric in metrics
    }
    return pd.DataFrame(columns, index=summary.index).assign(runs=summary["runs"])


def compare_pair(runs, variant_a, variant_b, metric="test_acc", alpha=ALPHA):
    """Welch's t-test of a vs b on `metric`: a dict with the means, the difference (a − b), its standard error,
    the (1 − alpha) confidence interval of the difference, the p-value and `differs` (p < alpha)."""
    _check_runs(runs, metric)
    check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
    values = {name: runs.loc[runs["variant"] == name, metric].to_numpy(float) for name in (variant_a, variant_b)}
    missing = [name for name, sample in values.items() if len(sample) == 0]
    if missing:
        raise ValueError(f"variant {missing[0]!r} is not in runs; variants: {list(runs['variant'].unique())}")
    sample_a, sample_b = values[variant_a], values[variant_b]
    test = stats.ttest_ind(sample_a, sample_b, equal_var=False)
    interval = test.confidence_interval(1 - alpha)
    return {
        "metric": metric,
        "a": variant_a,
        "b": variant_b,
        "mean a": sample_a.mean(),
        "mean b": sample_b.mean(),
        "difference": sample_a.mean() - sample_b.mean(),
        "standard error": np.sqrt(sample_a.var(ddof=1) / len(sample_a) + sample_b.var(ddof=1) / len(sample_b)),
        "ci low": interval.low,
        "ci high": interval.high,
        "p-value": test.pvalue,
        "differs": bool(test.pvalue < alpha),
        "alpha": alpha,
    }


def compare_variants(runs, metric="test_acc", alpha=ALPHA):
    """Every pair of variants compared on `metric` (a is the one with the larger mean), smallest p-value first."""
    rows = []
    for first, second in itertools.combinations(runs["variant"].unique(), 2):
        row = compare_pair(runs, first, second, metric, alpha)
        rows.append(row if row["difference"] >= 0 else compare_pair(runs, second, first, metric, alpha))
    return pd.DataFrame(rows).sort_values("p-value", ignore_index=True)


def detectable_difference(std, num_seeds, alpha=ALPHA, power=POWER, draws=20_000):
    """The smallest true difference that Welch's test detects with probability `power` at level `alpha`,
    for two variants with `num_seeds` runs each and the same seed-to-seed `std`.

    Simulated with `draws` pairs of normal samples from a fixed seed (the same answer on every call):
    Welch's test has no closed-form power, and with 2 seeds it needs far more than Student's formula says.
    """
    check_number("std", std, 0, None)
    num_seeds = check_integer("num_seeds", num_seeds, minimum=2)
    check_number("power", power, alpha, 1, low_open=True, high_open=True)
    first, second = np.random.default_rng(0).standard_normal((2, check_integer("draws", draws, 100), num_seeds))

    def missing_power(shift):  # shift: the true difference in units of std
        detected = stats.ttest_ind(first + shift, second, axis=1, equal_var=False).pvalue < alpha
        return detected.mean() - power

    return optimize.brentq(missing_power, 0.0, 100.0, xtol=1e-4) * std


def prediction_interval(values, level=1 - ALPHA):
    """(low, high): where one more run lands with probability `level`, from these runs (normal spread assumed).

    mean ± t(level, n − 1) · std · sqrt(1 + 1/n): wider than mean ± 2 std when there are few runs.
    """
    values = np.asarray(values, dtype=float)
    check_integer("len(values)", len(values), minimum=2)
    check_number("level", level, 0, 1, low_open=True, high_open=True)
    half_width = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) * np.sqrt(1 + 1 / len(values))
    return values.mean() - half_width, values.mean() + half_width


def describe_pair(comparison, unit="points"):
    """One sentence from `compare_pair`'s dict: the difference, its confidence interval and what the test says."""
    level = 1 - comparison["alpha"]
    verdict = (
        f"the test rejects equal means at the {comparison['alpha']:.0%} level"
        if comparison["differs"]
        else "these runs cannot tell the two apart (which does not make them equal)"
    )
    return (
        f"{comparison['a']} ({comparison['mean a']:.2f}) vs {comparison['b']} ({comparison['mean b']:.2f}): "
        f"difference {comparison['difference']:+.2f} {unit}, {level:.0%} confidence interval "
        f"[{comparison['ci low']:+.2f}, {comparison['ci high']:+.2f}], p = {comparison['p-value']:.3f} → {verdict}."
    )


def describe_comparisons(comparisons):
    """Markdown from `compare_variants`' table: how many pairs differ, and which pairs these runs cannot separate."""
    alpha = comparisons["alpha"].iloc[0]
    differing = int(comparisons["differs"].sum())
    same = comparisons[~comparisons["differs"]]
    text = f"{differing} of {len(comparisons)} pairs differ at the {alpha:.0%} level (Welch's t-test)"
    if same.empty:
        return f"{text}; every pair differs."
    pairs = "\n".join(
        f"- {row['a']} vs {row['b']} ({row['difference']:+.2f}, interval [{row['ci low']:+.2f}, {row['ci high']:+.2f}])"
        for _, row in same.iterrows()
    )
    return f"{text}. These runs cannot tell apart:\n{pairs}"


def gaps_show_overfitting(gap_a, gap_b):
    """True when both train − test gaps are positive: only then do they measure overfitting that can be compared.

    A negative gap means test accuracy above train accuracy: nothing overfits, and a more negative
    gap is not "less overfitting".
    """
    return gap_a > 0 and gap_b > 0


def describe_gap_change(gap_without, gap_with, change):
    """One sentence on what `change` did to the train − test gap, comparing the gaps only where both are positive."""
    gaps = f"{gap_without:+.2f} without, {gap_with:+.2f} with {change}"
    if gaps_show_overfitting(gap_without, gap_with):
        smaller = "smaller" if gap_with < gap_without else "not smaller"
        return f"In this run {change} made the gap {smaller} ({gaps}, in points)."
    if gap_without <= 0 and gap_with <= 0:
        return (f"Neither gap is positive ({gaps}): test accuracy reaches train accuracy in both runs, "
                "so this run shows no overfitting to compare.")
    overfitting = f"without {change}" if gap_without > 0 else f"with {change}"
    return (f"Only the run {overfitting} has a positive gap ({gaps}): the other does not overfit at all, and a "
            "negative gap is not less overfitting, so this run shows no two amounts of overfitting to compare.")


def judge_claim(comparison, expected):
    """How `compare_pair`'s result bears on a claim that a is the "same" as, "higher" or "lower" than b.

    No difference claimed: "consistent with our runs" unless the test rejects ("at odds with our runs").
    A direction: "supported", "not resolved" (no rejection) or "at odds with our runs". Gaps are
    compared only when both means are positive; else "no overfitting to compare".
    """
    check_choice("expected", expected, EXPECTATIONS)
    if comparison["metric"] == "train_test_gap" and not gaps_show_overfitting(
        comparison["mean a"], comparison["mean b"]
    ):
        return "no overfitting to compare"
    if expected == "same":
        return "at odds with our runs" if comparison["differs"] else "consistent with our runs"
    if not comparison["differs"]:
        return "not resolved"
    higher = comparison["difference"] > 0
    return "supported" if higher == (expected == "higher") else "at odds with our runs"


@dataclass(frozen=True)
class Claim:
    """A statement about variants `a` and `b` on `metric`: a is the "same" as, "higher" or "lower" than b.

    `asked_by` is "lecture" for what the lecture said, "us" for our own questions.
    """

    text: str
    a: str
    b: str
    metric: str = "test_acc"
    expected: str = "same"
    asked_by: str = "lecture"

    def __post_init__(self):
        check_choice("expected", self.expected, EXPECTATIONS)
        check_choice("asked_by", self.asked_by, ("lecture", "us"))


def judge_claims(claims, runs, alpha=ALPHA):
    """One row per claim: who asked, the comparison's numbers and the verdict (see `judge_claim`)."""
    rows = []
    for claim in claims:
        comparison = compare_pair(runs, claim.a, claim.b, claim.metric, alpha)
        rows.append({"claim": claim.text, "asked by": claim.asked_by, **comparison,
                     "verdict": judge_claim(comparison, claim.expected)})
    return pd.DataFrame(rows)


def describe_claim(judged_row, caveat=""):
    """A Markdown line for one row of `judge_claims`' table: the claim, who made it, the verdict (with `caveat`)."""
    who = "the lecture's claim" if judged_row["asked by"] == "lecture" else "our own question"
    verdict = f"{judged_row['verdict']} ({caveat})" if caveat else judged_row["verdict"]
    return f"- **{judged_row['claim']}** ({who}): {verdict}. {describe_pair(judged_row)}"


def tally_verdicts(judged):
    """Verdict counts over `judge_claims`' table with each (pair of variants, metric) counted once, at its first row."""
    pairs = [(frozenset((row.a, row.b)), row.metric) for row in judged.itertuples()]
    first = ~pd.Series(pairs, index=judged.index).duplicated()
    return judged.loc[first, "verdict"].value_counts().reindex(VERDICTS, fill_value=0)


def run_caveat(num_epochs, fallback):
    """What verdicts from runs unlike the lecture's (fewer epochs, or the fallback data) must say; "" for full runs."""
    if num_epochs >= FULL.num_epochs and not fallback:
        return ""
    data = "the small fallback sample" if fallback else "full MNIST"
    return f"caveat: from {num_epochs}-epoch runs on {data}, not the lecture's {FULL.num_epochs} epochs on full MNIST"
