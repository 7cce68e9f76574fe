"""A quantity against a swept setting: accuracy against momentum, against batch size (with the statistics' noise),
against learning rate or initialization.

One-panel helpers take `ax=None` and return the Axes; `plot_accuracy_and_noise` takes `figure=None` and returns it.
"""

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from bnlib.plotting.axes import default_axes, default_figure
from bnlib.studies.sweeps import TRAINS_AT_ACCURACY, sweep_summary

# Statistics that do not depend on the momentum, drawn as horizontal lines in their step's colour.
LINE_STYLES = {"cumulative average": "--", "whole training set": ":"}


def plot_accuracy_vs_momentum(sweep, steps_per_epoch, ax=None):
    """Eval accuracy against momentum, one coloured line per step of `accuracy_vs_momentum`'s rows.

    The cumulative average (momentum=None) and the whole-training-set statistics are horizontal
    lines in the step's colour, dashed and dotted. `sweep` is the list of rows or a DataFrame of them.
    """
    rows = sweep.to_dict("records") if hasattr(sweep, "to_dict") else list(sweep)
    ax = default_axes(ax, figsize=(8, 4.5))
    curves = []
    for step in sorted({row["step"] for row in rows}):
        at_step = [row for row in rows if row["step"] == step]
        running = [row for row in at_step if row["statistics"] == "running average"]
        (line,) = ax.plot([row["momentum"] for row in running], [row["accuracy"] for row in running], marker=".",
                          label=f"step {step} (epoch {step / steps_per_epoch:.2f})")
        curves.append(line)
        for row in at_step:
            if row["statistics"] in LINE_STYLES:
                ax.axhline(row["accuracy"], color=line.get_color(), linestyle=LINE_STYLES[row["statistics"]])
    ax.set_xscale("log")
    ax.set(xlabel="momentum of the running average", ylabel="eval-mode test accuracy (%)",
           title="Eval-mode test accuracy against momentum, at several points of training")
    styles = [Line2D([], [], color="0.4", linestyle=style, label=kind) for kind, style in LINE_STYLES.items()]
    ax.legend(handles=curves + styles, fontsize="small")
    return ax


def plot_accuracy_and_noise(sizes, eval_acc, train_mode_acc, mean_noise, var_noise, *, xlabel, reference=None,
                            title=None, figure=None):  # fmt: skip
    """Two panels against a batch size (log scale): test accuracy in eval and train mode, and statistic noise.

    `reference` (label, accuracy) draws a horizontal line, e.g. synchronized statistics. Returns the Figure.
    """
    fig = default_figure(figure, figsize=(12, 4.2))
    acc_ax, noise_ax = fig.subplots(1, 2)
    acc_ax.plot(sizes, eval_acc, marker="o", label="eval mode (running statistics)")
    acc_ax.plot(sizes, train_mode_acc, marker="s", linestyle="--", label="train mode (the batch's own statistics)")
    if reference is not None:
        acc_ax.axhline(reference[1], color="grey", linestyle=":", label=f"{reference[0]}: {reference[1]:.1f} %")
    acc_ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy (%)", ylim=(0, 100), title="Test accuracy")
    noise_ax.plot(sizes, mean_noise, marker="o", label="batch mean: RMS error / population std")
    noise_ax.plot(sizes, var_noise, marker="s", label="batch variance: RMS relative error")
    fine = np.geomspace(min(sizes), max(sizes), 100)
    noise_ax.plot(fine, 1 / np.sqrt(fine), color="grey", linestyle=":", label="1/√B")
    noise_ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="noise (relative)",
                 title="Noise of the first BatchNorm's batch statistics")  # fmt: skip
    for ax in (acc_ax, noise_ax):
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.xaxis.set_minor_locator(NullLocator())  # only the batch sizes on the log axis
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_sweep(table, column, ax=None, xlabel=None):
    """Test accuracy against `column` (log axis) per network: mean over seeds, each seed a dot, diverged runs an x."""
    ax = default_axes(ax, figsize=(8, 4))
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
