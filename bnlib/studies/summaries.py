"""Tables and sentences from runs: one row per run, mean ± std per variant, and Welch comparisons in words."""

import pandas as pd

from bnlib.studies.welch import ALPHA, POWER, check_runs, detectable_difference, detection_probability

# A run's numbers (History.final_numbers(), the grid's best_valid_acc and train_valid_gap) -> how tables and
# figures label them. Notebooks 01 and 02 read their tables by these labels.
METRIC_LABELS = {
    "final_train_acc": "train acc (%)",
    "final_valid_acc": "valid acc (%)",
    "best_valid_acc": "best valid acc (%)",
    "test_acc": "test acc (%)",
    "train_valid_gap": "train - valid gap",
    "train_test_gap": "train - test gap",
    "seconds_per_epoch": "s / epoch",
    "epochs": "epochs",
}
SMALLER_IS_BETTER = {"train_valid_gap", "train_test_gap", "seconds_per_epoch"}
HISTORY_COLUMNS = ["final_train_acc", "final_valid_acc", "test_acc", "train_valid_gap", "seconds_per_epoch", "epochs"]


def summarize_histories(histories):
    """One row per run of a {name: History} dict: final train/valid/test accuracy (%), the train − validation gap
    (overfitting, in points) and seconds per epoch."""
    rows = {}
    for name, history in histories.items():
        numbers = history.final_numbers()
        rows[name] = {**numbers, "train_valid_gap": numbers["final_train_acc"] - numbers["final_valid_acc"]}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=HISTORY_COLUMNS)
    return table.rename(columns=METRIC_LABELS).round(2)


def summarize_runs(runs, metrics=("test_acc", "train_valid_gap"), sort_by=None):
    """Mean, std (ddof=1) and count per variant for each metric; columns `<metric> mean`, `<metric> std`, `runs`.

    Sorted by the first metric's mean, best first (largest; smallest for the gaps and the time).
    """
    for metric in metrics:
        check_runs(runs, metric)
    grouped = runs.groupby("variant", sort=False)
    columns = {f"{metric} {stat}": grouped[metric].agg(stat) for metric in metrics for stat in ("mean", "std")}
    table = pd.concat(columns, axis=1)
    table["runs"] = grouped.size()
    sort_by = sort_by or metrics[0]
    return table.sort_values(f"{sort_by} mean", ascending=sort_by in SMALLER_IS_BETTER)


def format_mean_std(summary, metrics=("test_acc", "train_valid_gap"), decimals=2):
    """`summarize_runs`' table as text, one column per metric: '97.77 ± 0.08'."""
    columns = {
        METRIC_LABELS.get(metric, metric): [
            f"{mean:.{decimals}f} ± {std:.{decimals}f}"
            for mean, std in zip(summary[f"{metric} mean"], summary[f"{metric} std"], strict=True)
        ]
        for metric in metrics
    }
    return pd.DataFrame(columns, index=summary.index).assign(runs=summary["runs"])


def describe_pair(comparison, unit="points"):
    """One sentence from `compare_pair`'s dict: the difference, its confidence interval and what the test says."""
    level = 1 - comparison["alpha"]
    verdict = (
        f"the test rejects equal means at the {comparison['alpha']:.0%} level"
        if comparison["differs"]
        else "these runs cannot tell the two apart (which does not make them equal)"
    )
    second = "0" if comparison["b"] is None else f"{comparison['b']} ({comparison['mean b']:.2f})"
    return (
        f"{comparison['a']} ({comparison['mean a']:.2f}) vs {second}: "
        f"difference {comparison['difference']:+.2f} {unit}, {level:.0%} confidence interval "
        f"[{comparison['ci low']:+.2f}, {comparison['ci high']:+.2f}], p = {comparison['p-value']:.3f} → {verdict}."
    )


def describe_comparisons(comparisons):
    """Markdown from `compare_variants`' table: how many pairs differ after Holm's correction (and before it),
    and which pairs these runs cannot separate."""
    alpha = comparisons["alpha"].iloc[0]
    differing, before = int(comparisons["differs"].sum()), int((comparisons["p-value"] < alpha).sum())
    text = (f"{differing} of {len(comparisons)} pairs differ at the {alpha:.0%} level after Holm's correction over "
            f"the {len(comparisons)} pairs ({before} before it; Welch's t-test)")  # fmt: skip
    same = comparisons[~comparisons["differs"]]
    if same.empty:
        return f"{text}; every pair differs."
    pairs = "\n".join(
        f"- {row['a']} vs {row['b']} ({row['difference']:+.2f}, {1 - alpha:.0%} interval [{row['ci low']:+.2f}, "
        f"{row['ci high']:+.2f}], Holm p = {row['Holm p-value']:.2f})"
        for _, row in same.iterrows()
    )
    return f"{text}. These runs cannot tell apart (which does not make them equal):\n{pairs}"


def describe_power(std, num_seeds, alpha=ALPHA, power=POWER):
    """The detectable difference as a power statement, for one comparison of two variants with `num_seeds` runs
    each and seed-to-seed `std`: the difference found `power` of the time, and how often half of it is found."""
    detectable = detectable_difference(std, num_seeds, alpha, power)
    half = detection_probability(detectable / 2, std, num_seeds, alpha) if detectable > 0 else alpha
    return (f"With {num_seeds} seeds per variant and a seed-to-seed std of {std:.3f} points, one Welch test at the "
            f"{alpha:.0%} level detects a true difference of {detectable:.2f} points {power:.0%} of the time; one "
            f"half that size ({detectable / 2:.2f} points) about {half:.0%} of the time.")  # fmt: skip
