"""Figures of notebooks 06 and 07 (training and inference pitfalls); each takes `ax=None` or returns a Figure."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullLocator


def plot_accuracy_and_noise(sizes, eval_acc, train_mode_acc, mean_noise, var_noise, *, xlabel, reference=None,
                            title=None):  # fmt: skip
    """Two panels against a batch size (log scale): test accuracy in eval and train mode, and statistic noise.

    `reference` (label, accuracy) draws a horizontal line, e.g. synchronized statistics. Returns the Figure.
    """
    fig, (acc_ax, noise_ax) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
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


def plot_grouped_bars(table, *, ylabel, title, ax=None):
    """One group of bars per row of a DataFrame, one bar per column, each labelled with its value; returns the Axes."""
    ax = ax if ax is not None else plt.figure(figsize=(9, 4.2), layout="constrained").add_subplot()
    width = 0.8 / len(table.columns)
    positions = np.arange(len(table))
    for number, column in enumerate(table.columns):
        bars = ax.bar(positions + (number - (len(table.columns) - 1) / 2) * width, table[column], width, label=column)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(positions, table.index)
    ax.set(ylabel=ylabel, ylim=(0, 120), title=title)  # room for the legend above bars near 100
    ax.legend(loc="upper center", ncols=len(table.columns), fontsize=9)
    return ax


def plot_shifted_digits(shifted, labels, count=4, vmax=1.3):
    """A grid: one column per shift ({name: images N×1×28×28}), `count` digits down, grey scale 0 to `vmax`; the Figure.

    The shifts are not clipped, so one common scale above 1 shows a brightness offset as brighter.
    """
    fig, axes = plt.subplots(count, len(shifted), figsize=(1.6 * len(shifted), 1.5 * count), layout="constrained",
                             squeeze=False)  # fmt: skip
    for column, (name, images) in enumerate(shifted.items()):
        for row in range(count):
            ax = axes[row, column]
            ax.imshow(images[row, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(f"label {int(labels[row])}", fontsize=9)
    fig.suptitle(f"Test digits under each shift (grey scale 0 to {vmax:g}, pixels not clipped)")
    return fig
