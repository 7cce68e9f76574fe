"""Every plot helper draws where it is told (`ax=` one panel, `figure=` several, e.g. a SubFigure) and returns it;
without one it makes a new constrained-layout pyplot Figure (bnlib.plotting.axes)."""

import inspect
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from bnlib import plotting
from bnlib.plotting.axes import default_axes, default_figure
from bnlib.train import History

pytestmark = pytest.mark.usefixtures("close_figures")

HISTORY = History(minibatch_loss=[2.0, 1.0, 0.5, 0.4], train_acc=[90.0, 95.0], valid_acc=[89.0, 94.0],
                  epoch_seconds=[1.0, 1.0])
RECORD = {"accuracy_steps": [0, 50], "test_accuracy": [10.0, 90.0], "final_test_accuracy": 90.0,
          "tracked_steps": [0, 50]}
GRID = pd.DataFrame({"variant": ["a", "a", "b", "b"], "seed": [1, 2, 1, 2], "epoch": [1, 1, 1, 1],
                     "test_acc": [97.0, 97.2, 96.0, 96.4], "valid_acc": [90.0, 92.0, 80.0, 82.0]})
SWEEP = pd.DataFrame({"network": ["plain"] * 2, "learning_rate": [0.1, 1.0], "test_accuracy": [90.0, 95.0],
                      "diverged": [False, False], "trains": [True, True]})
MOMENTUM_ROWS = [{"step": 5, "momentum": 0.1, "statistics": "running average", "accuracy": 70.0},
                 {"step": 5, "momentum": math.nan, "statistics": "whole training set", "accuracy": 75.0}]
IMAGES = torch.rand(4, 1, 28, 28)

# One call per helper, without the ax= / figure= that the tests add.
CALLS = {
    "plot_accuracy": lambda **where: plotting.plot_accuracy(HISTORY, **where),
    "plot_accuracy_and_noise": lambda **where: plotting.plot_accuracy_and_noise(
        [2, 8], [20, 90], [15, 85], [0.7, 0.35], [1.4, 0.5], xlabel="batch size", **where),
    "plot_accuracy_vs_momentum": lambda **where: plotting.plot_accuracy_vs_momentum(MOMENTUM_ROWS, 32, **where),
    "plot_accuracy_vs_step": lambda **where: plotting.plot_accuracy_vs_step({"run": RECORD}, **where),
    "plot_curves": lambda **where: plotting.plot_curves(GRID, "valid_acc", **where),
    "plot_digits": lambda **where: plotting.plot_digits(IMAGES, torch.arange(4), count=4, columns=2, **where),
    "plot_figure1": lambda **where: plotting.plot_figure1({"run": RECORD}, {"run": {"unit_inputs": np.zeros((2, 5))}},
                                                          **where),
    "plot_grouped_bars": lambda **where: plotting.plot_grouped_bars(pd.DataFrame({"x": [1.0]}), ylabel="y", title="t",
                                                                    **where),
    "plot_histories": lambda **where: plotting.plot_histories({"run": HISTORY}, averaging_iterations=2, **where),
    "plot_percentiles": lambda **where: plotting.plot_percentiles([0, 50], np.zeros((2, 5)), **where),
    "plot_runs": lambda **where: plotting.plot_runs(GRID, **where),
    "plot_shifted_digits": lambda **where: plotting.plot_shifted_digits({"clean": IMAGES}, torch.arange(4), count=2,
                                                                        **where),
    "plot_sweep": lambda **where: plotting.plot_sweep(SWEEP, "learning_rate", **where),
    "plot_training_loss": lambda **where: plotting.plot_training_loss(HISTORY, **where),
}


def where_parameter(name):
    """"ax" or "figure": the helper's parameter saying where to draw (the other is absent)."""
    parameters = inspect.signature(getattr(plotting, name)).parameters
    [where] = [key for key in ("ax", "figure") if key in parameters]
    assert parameters[where].default is None
    return where


def test_every_exported_helper_is_called_here():
    assert sorted(CALLS) == sorted(plotting.__all__)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_helper_draws_into_what_it_is_given_and_returns_it(name):
    outer = plt.figure(layout="constrained")
    if where_parameter(name) == "ax":
        target = outer.add_subplot()
        assert CALLS[name](ax=target) is target and target.has_data()
    else:
        target = outer.subfigures(1, 2)[1]  # a panel group inside a larger figure
        assert CALLS[name](figure=target) is target and target.axes
    assert plt.get_fignums() == [outer.number]  # nothing drawn anywhere else


@pytest.mark.parametrize("name", sorted(CALLS))
def test_without_a_target_a_helper_makes_one_new_figure(name):
    drawn = CALLS[name]()
    figure = drawn.figure if where_parameter(name) == "ax" else drawn
    assert plt.get_fignums() == [figure.number] and figure.get_layout_engine() is not None


def test_default_axes_and_figure_pass_a_given_target_through():
    figure, ax = plt.subplots()
    assert default_axes(ax) is ax and default_figure(figure) is figure
    new = default_axes(figsize=(3, 2))
    assert tuple(new.figure.get_size_inches()) == (3, 2) and new.figure is not figure
