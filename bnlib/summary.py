"""What a grid of runs over seeds says: mean ± std per variant, and which differences exceed the seed-to-seed spread.

The rule (a rough screen, not a formal test): two variants differ when the difference of their
means is larger than `factor` (2 by default) times their pooled standard deviation,
pooled_std = sqrt(((n_a - 1) s_a² + (n_b - 1) s_b²) / (n_a + n_b - 2)).
"""

import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

RULE_FACTOR = 2.0
METRIC_LABELS = {
    "test_acc": "test accuracy (%)",
    "final_train_acc": "final train accuracy (%)",
    "final_valid_acc": "final validation accuracy (%)",
    "best_valid_acc": "best validation accuracy (%)",
    "train_test_gap": "train - test gap (points)",
    "seconds_per_epoch": "seconds per epoch",
}


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


def pooled_std(values_a, values_b):
    """Pooled standard deviation of two samples (each needs at least 2 values)."""
    n_a, n_b = len(values_a), len(values_b)
    if n_a < 2 or n_b < 2:
        raise ValueError(f"each sample needs at least 2 values, got {n_a} and {n_b}")
    variance = ((n_a - 1) * np.var(values_a, ddof=1) + (n_b - 1) * np.var(values_b, ddof=1)) / (n_a + n_b - 2)
    return math.sqrt(variance)


def compare_pair(runs, variant_a, variant_b, metric="test_acc", factor=RULE_FACTOR):
    """A dict comparing two variants on `metric`: means, difference (a - b), pooled std, threshold, `exceeds`."""
    _check_runs(runs, metric)
    values = {name: runs.loc[runs["variant"] == name, metric].to_numpy(float) for name in (variant_a, variant_b)}
    missing = [name for name, sample in values.items() if len(sample) == 0]
    if missing:
        raise ValueError(f"variant {missing[0]!r} is not in runs; variants: {list(runs['variant'].unique())}")
    difference = values[variant_a].mean() - values[variant_b].mean()
    spread = pooled_std(values[variant_a], values[variant_b])
    return {
        "metric": metric,
        "a": variant_a,
        "b": variant_b,
        "mean a": values[variant_a].mean(),
        "mean b": values[variant_b].mean(),
        "difference": difference,
        "pooled std": spread,
        "threshold": factor * spread,
        "exceeds": bool(abs(difference) > factor * spread),
    }


def compare_variants(runs, metric="test_acc", factor=RULE_FACTOR):
    """Every pair of variants compared on `metric` (a is the one with the larger mean), largest ratio first."""
    variants = list(runs["variant"].unique())
    rows = []
    for first, second in itertools.combinations(variants, 2):
        row = compare_pair(runs, first, second, metric, factor)
        rows.append(row if row["difference"] >= 0 else compare_pair(runs, second, first, metric, factor))
    table = pd.DataFrame(rows)
    table["difference / pooled std"] = table["difference"] / table["pooled std"]
    return table.sort_values("difference / pooled std", ascending=False, ignore_index=True)


def describe_pair(comparison, unit="points"):
    """One sentence from `compare_pair`'s dict, saying whether the difference exceeds the rule."""
    verdict = (
        "larger than the seed-to-seed spread"
        if comparison["exceeds"]
        else "within the seed-to-seed spread: these runs cannot tell the two apart"
    )
    return (
        f"{comparison['a']} ({comparison['mean a']:.2f}) vs {comparison['b']} ({comparison['mean b']:.2f}): "
        f"difference {comparison['difference']:+.2f} {unit}, threshold {comparison['threshold']:.2f} → {verdict}."
    )


def judge_claim(comparison, expected):
    """How `compare_pair`'s result bears on a claim: `expected` 0 = no difference, +1 / -1 = a higher / lower than b.

    Returns 'consistent', 'contradicted' or 'unresolved' (a claimed direction, but within the spread).
    """
    if expected not in (-1, 0, 1):
        raise ValueError(f"expected must be -1, 0 or 1, got {expected!r}")
    if expected == 0:
        return "contradicted" if comparison["exceeds"] else "consistent"
    if not comparison["exceeds"]:
        return "unresolved"
    return "consistent" if math.copysign(1, comparison["difference"]) == expected else "contradicted"


def describe_comparisons(comparisons):
    """Markdown from `compare_variants`' table: how many pairs exceed the rule, and which pairs do not."""
    exceeding = int(comparisons["exceeds"].sum())
    within = comparisons[~comparisons["exceeds"]]
    text = f"{exceeding} of {len(comparisons)} pairs differ by more than the rule allows"
    if within.empty:
        return f"{text}; no pair is within the seed-to-seed spread."
    pairs = "\n".join(f"- {row.a} vs {row.b} ({row.difference:+.2f})" for row in within.itertuples())
    return f"{text}. Within the seed-to-seed spread (these runs cannot tell them apart):\n{pairs}"


def plot_runs(runs, metric="test_acc", order=None, ax=None):
    """Every run's `metric` as a point per variant, and the mean ± std as a bar with error bars; returns the Axes."""
    ax = ax if ax is not None else plt.figure(figsize=(7, 4)).add_subplot()
    order = list(order) if order is not None else list(runs["variant"].unique())
    rng = np.random.default_rng(0)  # horizontal jitter only, so points of equal value stay visible
    for position, variant in enumerate(order):
        values = runs.loc[runs["variant"] == variant, metric].to_numpy(float)
        jitter = rng.uniform(-0.12, 0.12, len(values))
        first = position == 0  # label once for the legend
        ax.scatter(values, position + jitter, s=18, color="tab:blue", alpha=0.7, label="one seed" if first else None)
        mean, std = values.mean(), values.std(ddof=1)
        ax.errorbar(mean, position, xerr=std, fmt="D", color="black", capsize=4, label="mean ± std" if first else None)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)  # first variant on top, like the table (set, not toggled: axes may be shared)
    label = METRIC_LABELS.get(metric, metric)
    ax.set(xlabel=label, title=f"{label[0].upper()}{label[1:]}: one dot per seed")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_curves(curves, column="valid_acc", order=None, ax=None):
    """Mean learning curve per variant over seeds with a ± std band, from `curves_long`'s table; returns the Axes."""
    ax = ax if ax is not None else plt.figure(figsize=(7, 4)).add_subplot()
    colors = {variant: f"C{index}" for index, variant in enumerate(curves["variant"].unique())}  # same in every plot
    for variant in list(order) if order is not None else colors:
        stats = curves[curves["variant"] == variant].groupby("epoch")[column].agg(["mean", "std"])
        marker = "." if len(stats) <= 15 else None  # dots only where there are few epochs
        ax.plot(stats.index, stats["mean"], marker=marker, color=colors[variant], label=variant)
        low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats.index, low, high, color=colors[variant], alpha=0.2)
    labels = {"train_acc": "train accuracy (%)", "valid_acc": "validation accuracy (%)", "loss": "training loss"}
    label = labels.get(column, column)
    ax.set(xlabel="epoch", ylabel=label, title=f"{label[0].upper()}{label[1:]}, mean ± std over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small", loc="lower right")
    return ax
