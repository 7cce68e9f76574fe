"""bnlib.plotting.curves returns labelled figures and never shows them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bnlib.plotting.curves import (  # noqa: E402
    plot_accuracy,
    plot_curves,
    plot_digits,
    plot_histories,
    plot_runs,
    plot_training_loss,
    running_average,
)
from bnlib.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(offset=0.0):
    return History(
        minibatch_loss=list(np.linspace(2.0, 0.1, 100) + offset),
        train_acc=[90.0, 95.0, 97.0],
        valid_acc=[89.0, 94.0, 96.0],
        epoch_seconds=[1.0, 1.0, 1.0],
    )


def test_running_average_matches_a_direct_mean():
    values = np.arange(10.0)
    expected = [np.mean(values[max(0, i - 2) : i + 1]) for i in range(10)]
    np.testing.assert_allclose(running_average(values, 3), expected, rtol=1e-12)


def test_loss_and_accuracy_plots_are_labelled():
    loss_ax = plot_training_loss(history(), averaging_iterations=10)
    assert len(loss_ax.lines) == 2 and loss_ax.get_xlabel() and loss_ax.get_ylabel() and loss_ax.get_title()
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), running_average(history().minibatch_loss, 10))
    acc_ax = plot_accuracy(history())
    assert [list(line.get_ydata()) for line in acc_ax.lines] == [[90.0, 95.0, 97.0], [89.0, 94.0, 96.0]]
    assert acc_ax.get_legend() is not None and acc_ax.get_xlabel() == "epoch"


def test_comparison_figure_has_one_curve_per_history():
    fig = plot_histories({"p = 0": history(), "p = 0.5": history(0.2)})
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes[:2]
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 4
    assert [text.get_text() for text in loss_ax.get_legend().get_texts()] == ["p = 0", "p = 0.5"]


def test_digit_grid_shows_images_with_labels():
    import torch

    images = torch.rand(10, 1, 28, 28)
    fig = plot_digits(images, torch.arange(10), count=10, columns=5)
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes[:3]] == ["label 0", "label 1", "label 2"]
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), images[4, 0].numpy())


def grid_runs():
    return pd.DataFrame({"variant": ["a", "a", "a", "b", "b"], "test_acc": [97.0, 97.2, 97.7, 96.0, 96.4]})


def test_plot_runs_draws_every_seed_and_the_mean_with_its_std():
    ax = plot_runs(grid_runs(), "test_acc", order=["b", "a"])
    dots = [collection.get_offsets() for collection in ax.collections if isinstance(collection, PathCollection)]
    seeds = sorted(float(x) for offsets in dots for x, _ in offsets)
    assert seeds == [96.0, 96.4, 97.0, 97.2, 97.7]  # one dot per seed, none averaged away
    b_y = [y for x, y in dots[0]]
    assert all(abs(y) <= 0.12 for y in b_y)  # jitter around b's row (first in `order`)
    means = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "D"]
    assert means == pytest.approx([96.2, 97.3])
    assert [label.get_text() for label in ax.get_yticklabels()] == ["b", "a"]
    assert ax.get_xlabel() == "test accuracy (%)"


def test_plot_curves_draws_the_mean_over_seeds_per_epoch():
    curves = pd.DataFrame(
        {"variant": ["a"] * 4 + ["b"] * 2, "seed": [1, 1, 2, 2, 1, 1], "epoch": [1, 2, 1, 2, 1, 2],
         "valid_acc": [90.0, 95.0, 92.0, 97.0, 80.0, 85.0]}
    )
    ax = plot_curves(curves, "valid_acc")
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [91.0, 96.0])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [80.0, 85.0])
    assert ax.get_ylabel() == "validation accuracy (%)"
