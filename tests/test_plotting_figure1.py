"""Notebook 08's plots draw the numbers they are given: percentiles, sweep means, diverged markers."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bnlib.plotting import figure1 as plotting_why


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def run_record(final):
    return {"accuracy_steps": [0, 50, 100], "test_accuracy": [10.0, 80.0, final], "final_test_accuracy": final,
            "tracked_steps": [0, 50, 100]}


def test_percentile_lines():
    samples = np.random.default_rng(0).normal(size=(3, 200))
    ax = plotting_why.plot_percentiles([0, 50, 100], samples)
    expected = np.percentile(samples, (15, 50, 85), axis=1)
    for line, values in zip(ax.lines, expected, strict=True):
        np.testing.assert_allclose(line.get_ydata(), values)
        np.testing.assert_array_equal(line.get_xdata(), [0, 50, 100])


def test_figure1_has_one_accuracy_panel_and_one_shared_percentile_panel_per_network():
    runs = {"no BatchNorm": run_record(90.0), "BatchNorm": run_record(97.5)}
    tensors = {"no BatchNorm": {"unit_inputs": np.full((3, 10), 5.0)}, "BatchNorm": {"unit_inputs": np.zeros((3, 10))}}
    figure = plotting_why.plot_figure1(runs, tensors)
    accuracy, *percentiles = figure.axes
    assert len(percentiles) == 2 and percentiles[0].get_shared_y_axes().joined(*percentiles)
    assert [line.get_ydata()[-1] for line in accuracy.lines] == [90.0, 97.5]
    assert [text.get_text() for text in accuracy.get_legend().get_texts()] == [
        "no BatchNorm: 90.0 % at the end", "BatchNorm: 97.5 % at the end"]


def test_figure1_with_three_networks_is_a_two_by_two_grid():
    names = ("no BatchNorm", "BatchNorm", "noisy BatchNorm")
    runs = {name: run_record(90.0) for name in names}
    figure = plotting_why.plot_figure1(runs, {name: {"unit_inputs": np.zeros((3, 10))} for name in names})
    positions = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in figure.axes}
    assert positions == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, True, False, False]


def test_sweep_plot_means_seeds_and_diverged_runs():
    table = pd.DataFrame({
        "network": ["plain"] * 6,
        "learning_rate": [0.1, 0.1, 1.0, 1.0, 10.0, 10.0],
        "test_accuracy": [90.0, 94.0, 95.0, np.nan, np.nan, np.nan],
        "diverged": [False, False, False, True, True, True],
        "trains": [True, True, True, False, False, False],
    })
    ax = plotting_why.plot_sweep(table, "learning_rate")
    mean, seeds, diverged, threshold = ax.lines
    np.testing.assert_array_equal(mean.get_ydata(), [92.0, np.nan, np.nan])  # one diverged seed: no mean
    np.testing.assert_array_equal(seeds.get_ydata(), table["test_accuracy"])
    np.testing.assert_array_equal(diverged.get_xdata(), [1.0, 10.0, 10.0])
    assert threshold.get_ydata()[0] == 90.0 and ax.get_xscale() == "log"
