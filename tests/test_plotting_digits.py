"""bnlib.plotting.digits: grids of digits with their labels, and of test digits under each shift."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from bnlib.plotting.digits import plot_digits, plot_shifted_digits

pytestmark = pytest.mark.usefixtures("close_figures")


def test_digit_grid_shows_images_with_labels():
    images = torch.rand(10, 1, 28, 28)
    fig = plot_digits(images, torch.arange(10), count=10, columns=5)
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes[:3]] == ["label 0", "label 1", "label 2"]
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), images[4, 0].numpy())


def test_shifted_digits_grid():
    images = torch.rand(4, 1, 28, 28)
    fig = plot_shifted_digits({"clean": images, "inverted": 1 - images}, torch.tensor([1, 2, 3, 4]), count=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert fig.axes[0].get_title() == "clean" and fig.axes[1].get_title() == "inverted"
    assert fig.axes[0].get_ylabel() == "label 1"
    assert fig.axes[0].images[0].get_clim() == (0, 1.3)
