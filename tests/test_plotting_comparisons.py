"""bnlib.plotting.comparisons: one dot per seed with the mean ± std, and grouped bars with their values."""

import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from bnlib.plotting.comparisons import plot_grouped_bars, plot_runs
from bnlib.studies.summaries import METRIC_LABELS

pytestmark = pytest.mark.usefixtures("close_figures")


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
    assert ax.get_xlabel() == METRIC_LABELS["test_acc"]


def test_grouped_bars_one_bar_per_cell_with_labels():
    table = pd.DataFrame({"MNIST": [97.0, 5.0], "inverted": [3.0, 70.0]}, index=["pretrained", "naive"])
    ax = plot_grouped_bars(table, ylabel="accuracy", title="t")
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [97.0, 5.0, 3.0, 70.0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["pretrained", "naive"]
    assert [text.get_text() for text in ax.texts] == ["97", "5", "3", "70"]
