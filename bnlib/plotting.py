"""Plots of training histories; each helper takes `ax=None`, returns the Axes or Figure and never calls show()."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


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
    ax.set(xlabel="training step (minibatch)", ylabel="cross-entropy loss", title="Training loss")
    ax.legend()
    return ax


def plot_accuracy(history, ax=None, label=None):
    """Train and validation accuracy per epoch (percent)."""
    ax = _axes(ax)
    epochs = np.arange(1, len(history.train_acc) + 1)
    name = f"{label}: " if label else ""
    (line,) = ax.plot(epochs, history.train_acc, marker=".", label=f"{name}train")
    ax.plot(epochs, history.valid_acc, marker=".", linestyle="--", color=line.get_color(), label=f"{name}validation")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy per epoch (solid: train, dashed: validation)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # quick mode has 2 epochs: no 1.5 ticks
    ax.legend(loc="lower right")
    return ax


def plot_histories(histories, averaging_iterations=20):
    """Side-by-side loss (running average) and accuracy curves for a {name: History} dict; returns the Figure."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for name, history in histories.items():
        loss_ax.plot(running_average(history.minibatch_loss, averaging_iterations), label=name)
        plot_accuracy(history, ax=acc_ax, label=name)
    loss_ax.set(
        xlabel="training step (minibatch)",
        ylabel=f"loss, running average of {averaging_iterations} steps",
        title="Training loss",
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
