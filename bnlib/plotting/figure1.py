"""Plots of notebook 08: the paper's Figure 1 (accuracy and sigmoid-input percentiles) and the robustness sweeps.

Each helper takes `ax=None` (or makes its own Figure), returns the Axes or Figure, and never calls show().
"""

import matplotlib.pyplot as plt
import numpy as np

from bnlib.studies.figure1 import PERCENTILES, unit_percentiles
from bnlib.studies.sweeps import TRAINS_AT_ACCURACY, sweep_summary


def _axes(ax, figsize=(6, 4)):
    return ax if ax is not None else plt.figure(figsize=figsize, layout="constrained").add_subplot()


def plot_accuracy_vs_step(runs, ax=None):
    """Test accuracy against training step for {name: record of `paper_figure.train_and_track`}."""
    ax = _axes(ax)
    for name, record in runs.items():
        label = f"{name}: {record['final_test_accuracy']:.1f} % at the end"
        ax.plot(record["accuracy_steps"], record["test_accuracy"], marker=".", label=label)
    ax.set(xlabel="training step", ylabel="test accuracy (%)", title="Test accuracy during training")
    low = min(min(record["test_accuracy"][1:] or record["test_accuracy"]) for record in runs.values())
    ax.set_ylim(max(low - 2, 0), 100)  # the first measurement (step 0, chance) would squash the curves
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_percentiles(steps, unit_inputs, ax=None, title=None):
    """The 15th, 50th and 85th percentiles of one sigmoid's input (`unit_inputs`: checkpoints × images) by step."""
    ax = _axes(ax)
    values = unit_percentiles(unit_inputs)
    for column, percentile in enumerate(PERCENTILES):
        ax.plot(steps, values[:, column], color="C0", linewidth=2 if percentile == 50 else 1,
                label=f"{percentile}th percentile")
    ax.set(xlabel="training step", ylabel="input to the sigmoid", title=title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_figure1(runs, tensors):
    """Ioffe & Szegedy's Figure 1: (a) accuracy, then one percentile panel per network (same y axis), in a grid.

    `runs`: {name: record}; `tensors`: {name: {"unit_inputs": (checkpoints, images)}}. Returns the Figure.
    """
    count = len(runs) + 1
    columns = count if count <= 3 else 2  # four panels as 2 x 2: a notebook is about 10 inches wide
    rows = -(-count // columns)
    figure = plt.figure(figsize=(3.6 * columns, 3.3 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for extra in axes[count:]:
        extra.remove()
    plot_accuracy_vs_step(runs, ax=axes[0]).set_title("(a) test accuracy")
    for letter, ax, (name, record) in zip("bcdefg", axes[1:count], runs.items(), strict=False):
        plot_percentiles(record["tracked_steps"], tensors[name]["unit_inputs"], ax=ax, title=f"({letter}) {name}")
        ax.sharey(axes[1])
        if ax is not axes[1]:
            ax.get_legend().remove()  # one legend says it for all panels
    figure.suptitle("Test accuracy, and one sigmoid's input over training (15th, 50th, 85th percentiles)")
    return figure


def plot_sweep(table, column, ax=None, xlabel=None):
    """Test accuracy against `column` (log axis) per network: mean over seeds, each seed a dot, diverged runs an x."""
    ax = _axes(ax, figsize=(8, 4))
    means = sweep_summary(table, column)["mean test accuracy (%)"]  # NaN where any seed diverged: a gap
    for index, (network, group) in enumerate(table.groupby("network", sort=False)):
        color = f"C{index}"
        mean = means[network]
        ax.plot(mean.index, mean.to_numpy(), color=color, marker="o", label=f"{network}: mean over seeds")
        ax.plot(group[column], group["test_accuracy"], ".", color=color, alpha=0.5)
        diverged = group[group["diverged"]]
        ax.plot(diverged[column], np.zeros(len(diverged)), "x", color=color, markersize=9,
                label=f"{network}: diverged" if len(diverged) else "_nolegend_")
    ax.axhline(TRAINS_AT_ACCURACY, color="0.5", linestyle="--", linewidth=1, label=f"{TRAINS_AT_ACCURACY:g} %")
    ax.set_xscale("log")
    ax.set(xlabel=xlabel or column, ylabel="test accuracy (%)", ylim=(-4, 102))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")  # beside the plot: no point hidden
    return ax
