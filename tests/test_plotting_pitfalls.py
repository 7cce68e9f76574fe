"""Figures of notebooks 06 and 07: labelled, one artist per value, never shown."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bnlib.plotting.pitfalls import plot_accuracy_and_noise, plot_grouped_bars, plot_shifted_digits  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


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


def test_grouped_bars_one_bar_per_cell_with_labels():
    table = pd.DataFrame({"MNIST": [97.0, 5.0], "inverted": [3.0, 70.0]}, index=["pretrained", "naive"])
    ax = plot_grouped_bars(table, ylabel="accuracy", title="t")
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [97.0, 5.0, 3.0, 70.0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["pretrained", "naive"]
    assert [text.get_text() for text in ax.texts] == ["97", "5", "3", "70"]


def test_shifted_digits_grid():
    images = torch.rand(4, 1, 28, 28)
    fig = plot_shifted_digits({"clean": images, "inverted": 1 - images}, torch.tensor([1, 2, 3, 4]), count=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert fig.axes[0].get_title() == "clean" and fig.axes[1].get_title() == "inverted"
    assert fig.axes[0].get_ylabel() == "label 1"
    assert fig.axes[0].images[0].get_clim() == (0, 1.3)
