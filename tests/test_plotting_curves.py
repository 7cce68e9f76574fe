"""bnlib.plotting.curves: loss and accuracy curves, mean curves over seeds, accuracy by step; labelled, never shown."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bnlib.plotting.curves import (
    plot_accuracy,
    plot_accuracy_vs_step,
    plot_curves,
    plot_histories,
    plot_training_loss,
    running_average,
)
from bnlib.train import History

pytestmark = pytest.mark.usefixtures("close_figures")


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


def test_accuracy_vs_step_one_line_per_run_without_the_chance_start():
    runs = {"no BatchNorm": {"accuracy_steps": [0, 50, 100], "test_accuracy": [10.0, 80.0, 90.0],
                             "final_test_accuracy": 90.0},
            "BatchNorm": {"accuracy_steps": [0, 50, 100], "test_accuracy": [11.0, 95.0, 97.5],
                          "final_test_accuracy": 97.5}}
    ax = plot_accuracy_vs_step(runs)
    assert [list(line.get_ydata()) for line in ax.lines] == [[10.0, 80.0, 90.0], [11.0, 95.0, 97.5]]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "no BatchNorm: 90.0 % at the end", "BatchNorm: 97.5 % at the end"]
    assert ax.get_ylim() == (78.0, 100.0)  # from 2 points under the lowest after step 0, not from chance
