"""Plots of training histories; each helper takes `ax=None`, returns the Axes or Figure and never calls show()."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from bnlib.studies.significance import METRIC_LABELS


def _axes(ax, figsize=(6, 4)):
    return ax if ax is not None else plt.figure(figsize=figsize).add_subplot()


def running_average(values, window):
    """Mean of each value with the `window - 1` values before it (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_training_loss(history, averaging_iterations=20, ax=None, label=None):
    """Minibatch loss and its running average over `averaging_iterations` steps, as in the lecture's helper."""
    ax = _axes(ax)
    losses = history.minibatch_loss
    name = f"{label}: " if label else ""
    ax.plot(losses, alpha=0.3, linewidth=0.8, label=f"{name}minibatch loss")
    average = running_average(losses, averaging_iterations)
    ax.plot(average, label=f"{name}running average ({averaging_iterations} steps)")
    if len(losses) > 0:
        ax.set_ylim(0, np.percentile(losses, 99) * 1.1)
    ax.set(xlabel="training step (minibatch)", ylabel="cross-entropy loss", title="Minibatch loss in train mode")
    ax.legend()
    return ax


def plot_accuracy(history, ax=None, label=None):
    """Train and validation accuracy per epoch (percent)."""
    ax = _axes(ax)
    epochs = np.arange(1, len(history.train_acc) + 1)
    name = f"{label}: " if label else ""
    (line,) = ax.plot(epochs, history.train_acc, marker=".", label=f"{name}train")
    ax.plot(epochs, history.valid_acc, marker=".", linestyle="--", color=line.get_color(), label=f"{name}validation")
    title = "Accuracy per epoch, eval mode (solid: train, dashed: validation)"
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # quick mode has 2 epochs: no 1.5 ticks
    ax.legend(loc="lower right")
    return ax


def plot_histories(histories, averaging_iterations=20):
    """Side-by-side loss (running average) and accuracy curves for a {name: History} dict; returns the Figure.

    The loss is each minibatch's, in train mode (dropout on); the accuracies are measured in eval mode.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for name, history in histories.items():
        loss_ax.plot(running_average(history.minibatch_loss, averaging_iterations), label=name)
        plot_accuracy(history, ax=acc_ax, label=name)
    loss_ax.set(
        xlabel="training step (minibatch)",
        ylabel=f"loss, running average of {averaging_iterations} steps",
        title="Minibatch loss in train mode (dropout on, where the model has it)",
    )
    loss_ax.legend()
    fig.suptitle(" vs ".join(histories))
    return fig


def plot_digits(images, labels, count=16, columns=8):
    """A grid of the first `count` images (N×1×28×28) with their labels as titles; returns the Figure."""
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), layout="constrained")
    for ax, image, label in zip(axes.flat, images[:count], labels[:count], strict=False):
        ax.imshow(image.squeeze(0).cpu().numpy(), cmap="gray_r")
        ax.set_title(f"label {int(label)}", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"The first {count} training images")
    return fig


def plot_runs(runs, metric="test_acc", order=None, ax=None):
    """Every run's `metric` as a point per variant, and the mean ± std as a bar with error bars; returns the Axes."""
    ax = _axes(ax, figsize=(7, 4))
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


def plot_curves(curves, column="valid_acc", order=None, ax=None):
    """Mean learning curve per variant over seeds with a ± std band, from `curves_long`'s table; returns the Axes."""
    ax = _axes(ax, figsize=(7, 4))
    colors = {variant: f"C{index}" for index, variant in enumerate(curves["variant"].unique())}  # same in every plot
    for variant in list(order) if order is not None else colors:
        stats = curves[curves["variant"] == variant].groupby("epoch")[column].agg(["mean", "std"])
        marker = "." if len(stats) <= 15 else None  # dots only where there are few epochs
        ax.plot(stats.index, stats["mean"], marker=marker, color=colors[variant], label=variant)
        low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats.index, low, high, color=colors[variant], alpha=0.2)
    labels = {"train_acc": "train accuracy (%)", "valid_acc": "validation accuracy (%)", "loss": "minibatch loss"}
    label = labels.get(column, column)
    ax.set(xlabel="epoch", ylabel=label, title=f"{label[0].upper()}{label[1:]}, mean ± std over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small", loc="lower right")
    return ax
