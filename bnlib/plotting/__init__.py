"""Figures, one module by what they draw; every helper takes `ax=None` (one panel) or `figure=None` (several) and
returns what it drew on (`bnlib.plotting.axes`).

Notebooks write `from bnlib import plotting` and then `plotting.plot_histories(...)`.
"""

from bnlib.plotting.comparisons import plot_grouped_bars, plot_runs
from bnlib.plotting.curves import plot_accuracy, plot_accuracy_vs_step, plot_curves, plot_histories, plot_training_loss
from bnlib.plotting.digits import plot_digits, plot_shifted_digits
from bnlib.plotting.percentiles import plot_figure1, plot_percentiles
from bnlib.plotting.sweeps import plot_accuracy_and_noise, plot_accuracy_vs_momentum, plot_sweep

__all__ = [
    "plot_accuracy", "plot_accuracy_and_noise", "plot_accuracy_vs_momentum", "plot_accuracy_vs_step", "plot_curves",
    "plot_digits", "plot_figure1", "plot_grouped_bars", "plot_histories", "plot_percentiles", "plot_runs",
    "plot_shifted_digits", "plot_sweep", "plot_training_loss",
]  # fmt: skip
