"""bnlib.plotting.sweeps draws what it is given against the swept setting: momentum, batch size, learning rate."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bnlib.plotting.sweeps import plot_accuracy_and_noise, plot_accuracy_vs_momentum, plot_sweep

pytestmark = pytest.mark.usefixtures("close_figures")


def sweep_rows():
    rows = []
    for step, offset in ((5, 0.0), (64, 10.0)):
        for momentum, accuracy in ((0.001, 50.0), (0.1, 70.0), (1.0, 60.0)):
            rows.append({"step": step, "momentum": momentum, "statistics": "running average",
                         "accuracy": accuracy + offset})
        rows.append({"step": step, "momentum": None, "statistics": "cumulative average", "accuracy": 55.0 + offset})
        rows.append({"step": step, "momentum": math.nan, "statistics": "whole training set",
                     "accuracy": 75.0 + offset})
    return rows


@pytest.mark.parametrize("as_frame", [False, True], ids=["rows", "DataFrame"])
def test_one_curve_per_step_and_flat_lines_in_its_colour(as_frame):
    rows = sweep_rows()
    ax = plot_accuracy_vs_momentum(pd.DataFrame(rows) if as_frame else rows, steps_per_epoch=32)
    try:
        curves = [line for line in ax.get_lines() if line.get_label().startswith("step")]
        assert [line.get_label() for line in curves] == ["step 5 (epoch 0.16)", "step 64 (epoch 2.00)"]
        assert list(curves[1].get_xdata()) == [0.001, 0.1, 1.0] and list(curves[1].get_ydata()) == [60, 80, 70]
        flat = [line for line in ax.get_lines() if line not in curves]
        assert [(line.get_ydata()[0], line.get_linestyle(), line.get_color()) for line in flat] == [
            (55.0, "--", curves[0].get_color()), (75.0, ":", curves[0].get_color()),
            (65.0, "--", curves[1].get_color()), (85.0, ":", curves[1].get_color()),
        ]
        assert ax.get_xscale() == "log"
        assert [text.get_text() for text in ax.get_legend().get_texts()] == [
            "step 5 (epoch 0.16)", "step 64 (epoch 2.00)", "cumulative average", "whole training set"
        ]
    finally:
        plt.close(ax.figure)


def test_draws_into_a_given_axes():
    figure, ax = plt.subplots()
    try:
        assert plot_accuracy_vs_momentum(sweep_rows(), 32, ax=ax) is ax
    finally:
        plt.close(figure)


def test_accuracy_and_noise_panels():
    sizes = [2, 8, 32]
    fig = plot_accuracy_and_noise(sizes, [20, 90, 95], [15, 85, 95], [0.7, 0.35, 0.18], [1.4, 0.5, 0.25],
                                  xlabel="batch size", reference=("synchronized", 96.0), title="t")  # fmt: skip
    acc_ax, noise_ax = fig.axes
    assert list(acc_ax.lines[0].get_ydata()) == [20, 90, 95]
    assert list(acc_ax.lines[1].get_ydata()) == [15, 85, 95]
    assert acc_ax.lines[2].get_ydata()[0] == 96.0 and "96.0 %" in acc_ax.get_legend().get_texts()[2].get_text()
    assert list(noise_ax.lines[1].get_ydata()) == [1.4, 0.5, 0.25]
    assert noise_ax.lines[2].get_ydata()[0] == pytest.approx(2**-0.5)  # the 1/sqrt(B) reference starts at B = 2
    assert [tick.get_text() for tick in acc_ax.get_xticklabels()] == ["2", "8", "32"]
    assert acc_ax.get_xlabel() == "batch size" and fig._suptitle.get_text() == "t"


def test_sweep_plot_means_seeds_and_diverged_runs():
    table = pd.DataFrame({
        "network": ["plain"] * 6,
        "learning_rate": [0.1, 0.1, 1.0, 1.0, 10.0, 10.0],
        "test_accuracy": [90.0, 94.0, 95.0, np.nan, np.nan, np.nan],
        "diverged": [False, False, False, True, True, True],
        "trains": [True, True, True, False, False, False],
    })
    ax = plot_sweep(table, "learning_rate")
    mean, seeds, diverged, threshold = ax.lines
    np.testing.assert_array_equal(mean.get_ydata(), [92.0, np.nan, np.nan])  # one diverged seed: no mean
    np.testing.assert_array_equal(seeds.get_ydata(), table["test_accuracy"])
    np.testing.assert_array_equal(diverged.get_xdata(), [1.0, 10.0, 10.0])
    assert threshold.get_ydata()[0] == 90.0 and ax.get_xscale() == "log"
