"""Comparisons of variants side by side: every seed's result as a dot with the mean ± std, grouped bars.

Each helper takes `ax=None` and returns the Axes.
"""

import numpy as np

from bnlib.plotting.axes import default_axes
from bnlib.studies.summaries import METRIC_LABELS


def plot_runs(runs, metric="test_acc", order=None, ax=None):
    """Every run's `metric` as a point per variant, and the mean ± std as a bar with error bars; returns the Axes."""
    ax = default_axes(ax, figsize=(7, 4))
    order = list(order) if order is not None else list(runs["variant"].unique())
    rng = np.random.default_rng(0)  # vertical jitter only, so points of equal value stay visible
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


def plot_grouped_bars(table, *, ylabel, title, ax=None):
    """One group of bars per row of a DataFrame, one bar per column, each labelled with its value; returns the Axes."""
    ax = default_axes(ax, figsize=(9, 4.2))
    width = 0.8 / len(table.columns)
    positions = np.arange(len(table))
    for number, column in enumerate(table.columns):
        bars = ax.bar(positions + (number - (len(table.columns) - 1) / 2) * width, table[column], width, label=column)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(positions, table.index)
    ax.set(ylabel=ylabel, ylim=(0, 120), title=title)  # room for the legend above bars near 100
    ax.legend(loc="upper center", ncols=len(table.columns), fontsize=9)
    return ax
