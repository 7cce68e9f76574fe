"""Percentiles of one sigmoid's input over training, alone or in Ioffe & Szegedy's Figure 1 beside the accuracy.

`plot_percentiles` takes `ax=None` and returns the Axes; `plot_figure1` takes `figure=None` and returns it.
"""

from bnlib.plotting.axes import default_axes, default_figure
from bnlib.plotting.curves import plot_accuracy_vs_step
from bnlib.studies.figure1 import PERCENTILES, unit_percentiles


def plot_percentiles(steps, unit_inputs, ax=None, title=None):
    """The 15th, 50th and 85th percentiles of one sigmoid's input (`unit_inputs`: checkpoints × images) by step."""
    ax = default_axes(ax)
    values = unit_percentiles(unit_inputs)
    for column, percentile in enumerate(PERCENTILES):
        ax.plot(steps, values[:, column], color="C0", linewidth=2 if percentile == 50 else 1,
                label=f"{percentile}th percentile")
    ax.set(xlabel="training step", ylabel="input to the sigmoid", title=title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_figure1(runs, tensors, figure=None):
    """Ioffe & Szegedy's Figure 1: (a) accuracy, then one percentile panel per network (same y axis), in a grid.

    `runs`: {name: record}; `tensors`: {name: {"unit_inputs": (checkpoints, images)}}. Returns the Figure.
    """
    count = len(runs) + 1
    columns = count if count <= 3 else 2  # four panels as 2 x 2: a notebook is about 10 inches wide
    rows = -(-count // columns)
    figure = default_figure(figure, figsize=(3.6 * columns, 3.3 * rows))
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
