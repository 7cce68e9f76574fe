"""Curves against training time: loss and accuracy of one run or several, mean curves over seeds, accuracy by step.

Single-panel helpers take `ax=None` and return the Axes; `plot_histories` takes `figure=None` and returns it.
"""

import numpy as np
from matplotlib.ticker import MaxNLocator

from bnlib.plotting.axes import default_axes, default_figure

CURVE_LABELS = {"train_acc": "train accuracy (%)", "valid_acc": "validation accuracy (%)", "loss": "minibatch loss"}


def running_average(values, window):
    """Mean of each value with the `window - 1` values before it (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_training_loss(history, averaging_iterations=20, ax=None, label=None):
    """Minibatch loss and its running average over `averaging_iterations` steps, as in the lecture's helper."""
    ax = default_axes(ax)
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
    ax = default_axes(ax)
    epochs = np.arange(1, len(history.train_acc) + 1)
    name = f"{label}: " if label else ""
    (line,) = ax.plot(epochs, history.train_acc, marker=".", label=f"{name}train")
    ax.plot(epochs, history.valid_acc, marker=".", linestyle="--", color=line.get_color(), label=f"{name}validation")
    title = "Accuracy per epoch, eval mode (solid: train, dashed: validation)"
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # quick mode has 2 epochs: no 1.5 ticks
    ax.legend(loc="lower right")
    return ax


def plot_histories(histories, averaging_iterations=20, figure=None):
    """Side-by-side loss (running average) and accuracy curves for a {name: History} dict; returns the Figure.

    The loss is each minibatch's, in train mode (dropout on); the accuracies are measured in eval mode.
    """
    fig = default_figure(figure, figsize=(12, 4.5))
    loss_ax, acc_ax = fig.subplots(1, 2)
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


def plot_curves(curves, column="valid_acc", order=None, ax=None):
    """Mean learning curve per variant over seeds with a ± std band, from `curves_long`'s table; returns the Axes."""
    ax = default_axes(ax, figsize=(7, 4))
    colors = {variant: f"C{index}" for index, variant in enumerate(curves["variant"].unique())}  # same in every plot
    for variant in list(order) if order is not None else colors:
        stats = curves[curves["variant"] == variant].groupby("epoch")[column].agg(["mean", "std"])
        marker = "." if len(stats) <= 15 else None  # dots only where there are few epochs
        ax.plot(stats.index, stats["mean"], marker=marker, color=colors[variant], label=variant)
        low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats.index, low, high, color=colors[variant], alpha=0.2)
    label = CURVE_LABELS.get(column, column)
    ax.set(xlabel="epoch", ylabel=label, title=f"{label[0].upper()}{label[1:]}, mean ± std over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_accuracy_vs_step(runs, ax=None):
    """Test accuracy against training step for {name: record of `bnlib.studies.figure1.train_and_track`}."""
    ax = default_axes(ax)
    for name, record in runs.items():
        label = f"{name}: {record['final_test_accuracy']:.1f} % at the end"
        ax.plot(record["accuracy_steps"], record["test_accuracy"], marker=".", label=label)
    ax.set(xlabel="training step", ylabel="test accuracy (%)", title="Test accuracy during training")
    low = min(min(record["test_accuracy"][1:] or record["test_accuracy"]) for record in runs.values())
    ax.set_ylim(max(low - 2, 0), 100)  # the first measurement (step 0, chance) would squash the curves
    ax.legend(loc="lower right", fontsize="small")
    return ax
