"""bnlib.plotting.percentiles draws the numbers it is given: a unit's percentiles by step, the paper's Figure 1."""

import numpy as np
import pytest

from bnlib.plotting.percentiles import plot_figure1, plot_percentiles

pytestmark = pytest.mark.usefixtures("close_figures")


def run_record(final):
    return {"accuracy_steps": [0, 50, 100], "test_accuracy": [10.0, 80.0, final], "final_test_accuracy": final,
            "tracked_steps": [0, 50, 100]}


def test_percentile_lines():
    samples = np.random.default_rng(0).normal(size=(3, 200))
    ax = plot_percentiles([0, 50, 100], samples)
    expected = np.percentile(samples, (15, 50, 85), axis=1)
    for line, values in zip(ax.lines, expected, strict=True):
        np.testing.assert_allclose(line.get_ydata(), values)
        np.testing.assert_array_equal(line.get_xdata(), [0, 50, 100])


def test_figure1_has_one_accuracy_panel_and_one_shared_percentile_panel_per_network():
    runs = {"no BatchNorm": run_record(90.0), "BatchNorm": run_record(97.5)}
    tensors = {"no BatchNorm": {"unit_inputs": np.full((3, 10), 5.0)}, "BatchNorm": {"unit_inputs": np.zeros((3, 10))}}
    figure = plot_figure1(runs, tensors)
    accuracy, *percentiles = figure.axes
    assert len(percentiles) == 2 and percentiles[0].get_shared_y_axes().joined(*percentiles)
    assert [line.get_ydata()[-1] for line in accuracy.lines] == [90.0, 97.5]
    assert [text.get_text() for text in accuracy.get_legend().get_texts()] == [
        "no BatchNorm: 90.0 % at the end", "BatchNorm: 97.5 % at the end"]


def test_figure1_with_three_networks_is_a_two_by_two_grid():
    names = ("no BatchNorm", "BatchNorm", "noisy BatchNorm")
    runs = {name: run_record(90.0) for name in names}
    figure = plot_figure1(runs, {name: {"unit_inputs": np.zeros((3, 10))} for name in names})
    positions = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in figure.axes}
    assert positions == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, True, False, False]
