"""The momentum explorer driven headless: set the controls, read back the plotted data and the readout."""

import base64

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from ipywidgets import DOMWidget, Widget

from bnlib.stats.evaluation import evaluate_with_stats
from bnlib.stats.population import population_stats
from bnlib.stats.recording import checkpoint_steps
from bnlib.stats.running import replay_running_stats, running_stats_at
from bnlib.widgets import explorer as explorer_module
from bnlib.widgets import explorer_figure
from bnlib.widgets.backend import ipympl_active
from bnlib.widgets.displays import CanvasDisplay, ImageDisplay

STEPS_PER_EPOCH = 32
TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}  # the plot holds the replayed float64 values themselves


@pytest.fixture
def explorer(explorer_inputs):
    recorder, test, population = explorer_inputs
    return explorer_module.momentum_explorer(recorder, test, population, steps_per_epoch=STEPS_PER_EPOCH,
                                             in_browser=False)


def expected_readout_accuracy(recorder, test, step, momentum):
    kept = recorder.nearest_kept_step(step)
    layer_stats = running_stats_at(recorder.recording, kept, momentum)
    return evaluate_with_stats(recorder.model_at(kept), test, layer_stats)


def test_controls_and_defaults(explorer, explorer_inputs):
    recorder = explorer_inputs[0]
    assert isinstance(explorer, Widget) and explorer.last_error is None
    assert explorer.momentum.value == pytest.approx(0.1)
    assert (10**explorer.momentum.min, 10**explorer.momentum.max) == (0.001, 1.0)
    assert explorer.cumulative.value is False and explorer.current_momentum == pytest.approx(0.1)
    assert list(explorer.layer.options) == ["2", "6"] and explorer.unit.max == 31
    assert explorer.step.value == explorer.step.max == recorder.steps == 96
    assert explorer.display.figure is explorer.figure and explorer.display.widget in explorer.children
    accuracy = expected_readout_accuracy(recorder, explorer_inputs[1], 96, explorer.momentum.value)
    assert "step 96," in explorer.readout.value and f"{accuracy:.2f} %" in explorer.readout.value


def test_momentum_slider_redraws_the_replayed_statistics_in_place(explorer, explorer_inputs):
    recorder, test, _ = explorer_inputs
    lines_before = [list(panel.axes.lines) for panel in explorer.panels.values()]
    explorer.layer.value, explorer.unit.value, explorer.step.value = "6", 3, 40
    explorer.momentum.value = 0.01
    assert explorer.unit.max == 15
    layer = recorder.recording["6"]
    running_mean, running_var = replay_running_stats(layer.mean[:, 3], layer.var[:, 3], 0.01)
    for key, expected in (("mean", running_mean), ("var", running_var)):
        panel = explorer.panels[key]
        x, y = panel.running.get_data()
        np.testing.assert_array_equal(x, np.arange(41))
        torch.testing.assert_close(torch.as_tensor(y), expected[:41], **TOLERANCE)
        torch.testing.assert_close(torch.as_tensor(panel.current.get_data()[1]), expected[40:41], **TOLERANCE)
        dots_x, dots_y = panel.dots.get_data()
        np.testing.assert_array_equal(dots_x, np.arange(1, 41))  # up to the current step, batch i at step i + 1
        np.testing.assert_array_equal(dots_y, getattr(layer, key)[:40, 3].numpy())
        assert panel.axes.get_xlim() == (0, 40)
    assert [list(panel.axes.lines) for panel in explorer.panels.values()] == lines_before, "artists are reused"
    accuracy = expected_readout_accuracy(recorder, test, 40, 0.01)
    assert "the weights kept at step 32, the recorded step nearest to step 40," in explorer.readout.value
    assert f"momentum 0.01: {accuracy:.2f} %" in explorer.readout.value
    assert "step 40 of 96 (epoch 1.25)" in explorer.caption.value


def test_momentum_changes_the_early_readout(explorer, explorer_inputs):
    explorer.step.value = 20
    readouts = {}
    for momentum in (0.001, 1.0):
        explorer.momentum.value = momentum
        readouts[momentum] = explorer.readout.value
        accuracy = expected_readout_accuracy(explorer_inputs[0], explorer_inputs[1], 20, momentum)
        assert f"{accuracy:.2f} %" in readouts[momentum]
    assert readouts[0.001] != readouts[1.0]


def test_cumulative_toggle_replays_momentum_none(explorer, explorer_inputs):
    recorder, test, _ = explorer_inputs
    explorer.step.value = 64
    explorer.cumulative.value = True
    assert explorer.current_momentum is None and explorer.momentum.disabled
    layer = recorder.recording["2"]
    running_mean, running_var = replay_running_stats(layer.mean[:, 0], layer.var[:, 0], None)
    torch.testing.assert_close(
        torch.as_tensor(explorer.panels["mean"].running.get_data()[1]), running_mean[:65], **TOLERANCE
    )
    torch.testing.assert_close(
        torch.as_tensor(explorer.panels["var"].running.get_data()[1]), running_var[:65], **TOLERANCE
    )
    accuracy = expected_readout_accuracy(recorder, test, 64, None)
    assert f"the cumulative average: {accuracy:.2f} %" in explorer.readout.value
    explorer.cumulative.value = False
    assert not explorer.momentum.disabled


def test_play_walks_the_steps_and_the_view_widens(explorer, explorer_inputs):
    assert explorer.frames[0] == 1 and explorer.frames[-1] == 96
    early = explorer_module.momentum_explorer(explorer_inputs[0], explorer_inputs[1], step=20, in_browser=False)
    assert early.frames[early.play.value] == 20, "Play starts at the explorer's initial step"
    explorer.play.value = 5
    assert explorer.step.value == explorer.frames[5]
    assert f"step {explorer.frames[5]} of 96" in explorer.caption.value
    explorer.step.value = 50  # set by hand: Play goes on from here
    assert explorer.frames[explorer.play.value] >= 50 and explorer.step.value == 50
    explorer.play.value += 1
    assert explorer.step.value > 50
    explorer.play.value = 5
    explorer.view.value = "whole"
    assert explorer.panels["mean"].axes.get_xlim() == (0, 96)
    assert len(explorer.panels["mean"].dots.get_data()[0]) == 96
    assert len(explorer.panels["mean"].running.get_data()[0]) == explorer.frames[5] + 1


def test_dots_are_thinned_but_the_running_line_is_exact(explorer_inputs):
    recorder, test, _ = explorer_inputs
    explorer = explorer_module.momentum_explorer(recorder, test, max_dots=10, in_browser=False)
    dots_x, _ = explorer.panels["var"].dots.get_data()
    assert len(dots_x) <= 10 and dots_x[0] == 1
    assert len(explorer.panels["var"].running.get_data()[0]) == 97
    assert explorer.reference is None


def test_reference_is_the_population_at_kept_steps(explorer, explorer_inputs):
    recorder, _, population = explorer_inputs
    steps, means, variances = explorer.reference["6"]
    assert list(steps) == sorted(recorder.weights)  # 10 kept steps, fewer than max_reference_steps
    expected = population_stats(recorder.model_at(32), population)["6"]
    index = list(steps).index(32)
    torch.testing.assert_close(torch.as_tensor(means[index]), expected.mean, **TOLERANCE)
    torch.testing.assert_close(torch.as_tensor(variances[index]), expected.var, **TOLERANCE)
    explorer.layer.value = "6"
    x, y = explorer.panels["var"].reference.get_data()
    np.testing.assert_array_equal(x, steps)
    np.testing.assert_array_equal(y, variances[:, 0])


def test_reference_steps_thins_log_evenly():
    kept = checkpoint_steps(210, 50)
    chosen = explorer_module.reference_steps(kept, 16)
    assert len(chosen) <= 16 and chosen[0] == 0 and chosen[-1] == kept[-1]
    assert set(chosen) <= set(kept) and chosen[:5] == kept[:5]


def test_errors_are_shown_in_the_output(explorer, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("replay failed")

    monkeypatch.setattr(explorer_figure.running, "replay_running_average", fail)
    explorer.momentum.value = 0.5
    assert isinstance(explorer.last_error, RuntimeError)
    assert "replay failed" in explorer.output.outputs[-1]["text"]
    monkeypatch.undo()
    explorer.momentum.value = 0.2
    assert explorer.last_error is None


def test_static_fallback_renders_a_png(explorer):
    assert not ipympl_active() and isinstance(explorer.display, ImageDisplay)
    image = explorer.display.widget
    assert image in explorer.children and bytes(image.value)[:4] == b"\x89PNG"


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")  # inside ipympl's toolbar
def test_ipympl_canvas_is_the_displayed_widget(explorer_inputs):
    recorder, test, _ = explorer_inputs
    backend = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        figures_before = set(plt.get_fignums())
        explorer = explorer_module.momentum_explorer(recorder, test, in_browser=False)
        canvas = explorer.figure.canvas
        assert isinstance(explorer.display, CanvasDisplay) and explorer.display.widget is canvas
        assert isinstance(canvas, DOMWidget) and canvas in explorer.children
        assert set(plt.get_fignums()) - figures_before == {explorer.figure.number}  # made once, under plt.ioff()
        explorer.momentum.value = 0.003
        canvas.draw()
        assert set(plt.get_fignums()) - figures_before == {explorer.figure.number}  # redrawn in place
        assert explorer.last_error is None and "momentum 0.003" in explorer.readout.value
    finally:
        plt.close("all")
        plt.switch_backend(backend)


def test_screen_draws_reuse_the_background_and_still_show_everything(explorer, monkeypatch):
    figure, canvas = explorer.figure, explorer.figure.canvas
    monkeypatch.setattr(explorer.display, "render", lambda: None)  # draw as ipympl does (canvas.draw), not via a PNG

    def pixels():
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()

    def full_draw_pixels():  # the whole figure drawn as matplotlib draws it, no cached background
        dynamic, figure.dynamic = figure.dynamic, []
        try:
            figure.stale = True
            return pixels()
        finally:
            figure.dynamic = dynamic

    explorer.step.value = 60
    for momentum in (0.001, 0.5):
        pixels()  # a full draw: its background (all but the running lines, markers and spines) is kept
        background = figure._background
        assert background is not None
        explorer.momentum.value = momentum
        assert not figure.stale, "a momentum change only redraws the dynamic artists"
        cached = pixels()
        assert figure._background is background, "drawn over the kept background"
        np.testing.assert_array_equal(cached, full_draw_pixels())
    pixels()
    background = figure._background
    explorer.unit.value = 5  # new dots and limits: a full draw
    assert figure.stale
    drawn = pixels()
    assert figure._background is not background
    np.testing.assert_array_equal(drawn, full_draw_pixels())


def test_the_output_carries_a_png_of_the_current_state_beside_the_widget_view(explorer):
    explorer.momentum.value = 0.003
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png[:4] == b"\x89PNG" and png == bytes(explorer.display.widget.value)  # what the image display shows
    explorer.momentum.value = 1.0
    assert base64.b64decode(explorer._repr_mimebundle_()["image/png"]) != png
