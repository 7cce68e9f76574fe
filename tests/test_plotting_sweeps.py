"""plot_accuracy_vs_momentum draws what the sweep's rows say: one curve per step, flat lines for the rest."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bnlib.plotting.sweeps import plot_accuracy_vs_momentum


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
