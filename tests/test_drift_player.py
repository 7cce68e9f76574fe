"""The drift player driven headless: move the step (slider or Play) and read back the histograms and lines."""

import base64

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from ipywidgets import DOMWidget

from bnlib.widgets.displays import CanvasDisplay, ImageDisplay
from bnlib.widgets.drift_player import DriftPlayer, histogram_counts, histogram_edges

STEPS = np.arange(0, 201, 50)  # 5 checkpoints


def drift_samples():
    """Two networks' tracked input at the 5 checkpoints, 300 images: one drifting, one steady."""
    rng = np.random.default_rng(0)
    drifting = rng.normal(size=(5, 300)) + 2.0 * np.arange(5)[:, None]  # the median moves by 2 per checkpoint
    steady = rng.normal(size=(5, 300))
    return {"no BatchNorm": drifting, "BatchNorm": steady}


@pytest.fixture
def samples():
    return drift_samples()


@pytest.fixture
def player(samples):
    figures = plt.get_fignums()
    player = DriftPlayer(STEPS, samples, bins=20)
    assert plt.get_fignums() == figures  # its figure is its own, not pyplot's
    yield player
    plt.close(player.figure)


def test_slider_redraws_every_histogram_in_place(player, samples):
    bars = dict(player.bars)
    player.step.value = 100
    assert player.last_error is None and player.bars == bars  # the same artists, new data
    for name, values in samples.items():
        counts = player.bars[name].get_data().values
        np.testing.assert_array_equal(counts, histogram_counts(values[2], player.edges[name]))
        drawn = [line.get_xdata()[0] for line in player.lines[name]]
        np.testing.assert_allclose(drawn, np.percentile(values[2], (15, 50, 85)))
        assert f"step 100: median {np.median(values[2]):+.2f}" in player.bars[name].axes.get_title()
        assert player.bars[name].axes.get_ylim()[1] == pytest.approx(1.05 * counts.max())


def test_play_moves_the_slider_and_the_figure(player, samples):
    assert (player.play.min, player.play.max, player.play.step) == (0, 200, 50)
    image = player.display.widget
    before = image.value
    player.play.value = 150
    assert player.step.value == 150
    after = bytes(image.value)
    assert after != bytes(before) and after.startswith(b"\x89PNG")  # the fallback image, drawn again
    assert isinstance(player.display, ImageDisplay) and image in player.children
    assert not isinstance(player.figure.canvas, DOMWidget)  # no ipympl under the test's Agg backend


def test_a_step_between_checkpoints_shows_the_one_before(player):
    assert [player.checkpoint(step) for step in (0, 49, 50, 199, 200, 500)] == [0, 0, 1, 3, 4, 4]


def test_x_axis_stays_fixed_while_the_distribution_drifts(player, samples):
    limits = [player.bars[name].axes.get_xlim() for name in samples]
    for step in STEPS:
        player.step.value = int(step)
    assert [player.bars[name].axes.get_xlim() for name in samples] == limits
    low, high = np.percentile(samples["no BatchNorm"], (0.5, 99.5))
    assert limits[0] == pytest.approx((low, high))


def test_static_view_carries_a_png(player):
    bundle = player._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_values_beyond_the_edges_count_in_the_outer_bins():
    edges = histogram_edges(np.linspace(0, 1, 1_001)[None, :], bins=4)
    counts = histogram_counts(np.array([-5.0, 0.5, 7.0]), edges)
    assert counts.sum() == 3 and counts[0] == 1 and counts[-1] == 1


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")  # inside ipympl's toolbar
def test_with_ipympl_the_canvas_is_the_displayed_widget(samples):
    backend = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        player = DriftPlayer(STEPS, samples, bins=20)
        canvas = player.figure.canvas
        assert isinstance(player.display, CanvasDisplay) and isinstance(canvas, DOMWidget) and canvas in player.children
        bars = player.bars["BatchNorm"].get_data().values.copy()
        player.step.value = 200
        assert player.last_error is None and not np.array_equal(player.bars["BatchNorm"].get_data().values, bars)
    finally:
        plt.close("all")
        plt.switch_backend(backend)
