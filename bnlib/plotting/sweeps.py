"""Plots of BatchNorm's statistics experiments; each helper takes `ax=None`, returns the Axes, never calls show()."""

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

# Statistics that do not depend on the momentum, drawn as horizontal lines in their step's colour.
LINE_STYLES = {"cumulative average": "--", "whole training set": ":"}


def plot_accuracy_vs_momentum(sweep, steps_per_epoch, ax=None):
    """Eval accuracy against momentum, one coloured line per step of `accuracy_vs_momentum`'s rows.

    The cumulative average (momentum=None) and the whole-training-set statistics are horizontal
    lines in the step's colour, dashed and dotted. `sweep` is the list of rows or a DataFrame of them.
    """
    rows = sweep.to_dict("records") if hasattr(sweep, "to_dict") else list(sweep)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
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
