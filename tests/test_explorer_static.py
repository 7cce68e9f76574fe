"""The momentum explorer made for a static page (BNLIB_STATIC=1): the readout table it embeds, the controls it fixes.

The table must say what the kernel's readout says for the same momentum; the browser's lookup in it is checked in
Chromium, with explorer_canvas.js's own render() on a stand-in for the widget model.
"""

import re

import numpy as np
import pytest

from bnlib.widgets.backend import BACKEND_ENV, STATIC_ENV, browser_figures_enabled
from bnlib.widgets.explorer import momentum_explorer, slider_grid
from tests.support.widget_page import widget_page
from tests.test_explorer import expected_readout_accuracy

ACCURACY = re.compile(r": (\d+\.\d\d) %$")


@pytest.fixture
def static_explorer(explorer_inputs, monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    recorder, test, population = explorer_inputs
    return momentum_explorer(recorder, test, population, in_browser=True, steps_per_epoch=32, step=40)


@pytest.fixture
def live_explorer(explorer_inputs, monkeypatch):
    monkeypatch.delenv(STATIC_ENV, raising=False)
    recorder, test, population = explorer_inputs
    return momentum_explorer(recorder, test, population, in_browser=True, steps_per_epoch=32, step=40)


def test_the_grid_is_every_value_the_slider_can_take(live_explorer):
    grid = slider_grid(live_explorer.momentum)
    assert len(grid) == 301 and grid[0] == pytest.approx(0.001, rel=1e-12) and grid[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(np.log10(grid)), 0.01, rtol=1e-9)
    assert grid[200] == pytest.approx(0.1, rel=1e-12)  # the default momentum is on it


def test_the_embedded_readouts_are_the_kernels_readouts(static_explorer, live_explorer, explorer_inputs):
    readouts = static_explorer.display.widget.readouts
    grid = slider_grid(live_explorer.momentum)
    assert (readouts["exponent_min"], readouts["exponent_step"]) == (-3, 0.01) and len(readouts["momentum"]) == 301
    for index in (0, 57, 200, 300):
        live_explorer.momentum.value = grid[index]
        assert readouts["momentum"][index] == live_explorer.readout.value
    live_explorer.cumulative.value = True
    assert readouts["cumulative"] == live_explorer.readout.value
    recorder, test = explorer_inputs[:2]
    for index, momentum in ((0, grid[0]), (300, grid[300])):  # and the numbers are the model's accuracies
        shown = float(ACCURACY.search(readouts["momentum"][index]).group(1))
        assert shown == pytest.approx(expected_readout_accuracy(recorder, test, 40, momentum), abs=0.005)
    assert readouts["momentum"][0] != readouts["momentum"][300]  # 0.001 and 1.0 give different accuracies here


def test_a_cell_that_moves_the_step_embeds_that_steps_table(static_explorer, live_explorer):
    static_explorer.step.value = live_explorer.step.value = 64
    live_explorer.momentum.value = slider_grid(live_explorer.momentum)[100]
    assert "step 64," in live_explorer.readout.value
    assert static_explorer.display.widget.readouts["momentum"][100] == live_explorer.readout.value


def test_a_static_page_fixes_the_controls_that_need_a_kernel_and_says_so(static_explorer):
    explorer = static_explorer
    assert all(control.disabled for control in (explorer.layer, explorer.unit, explorer.view, explorer.step,
                                                explorer.play))
    assert not explorer.momentum.disabled and not explorer.cumulative.disabled
    notes = [child for child in explorer.controls.children if "bnlib-needs-kernel" in child._dom_classes]
    assert len(notes) == 1 and "run the notebook to use this" in notes[0].value
    assert explorer.readout not in explorer.children  # the browser figure shows the readout instead
    assert "momentum" not in explorer.caption.value and "step 40 of 96" in explorer.caption.value


def test_a_live_kernel_embeds_no_table(live_explorer):
    assert live_explorer.display.widget.readouts == {} and live_explorer.readout in live_explorer.children
    assert not live_explorer.step.disabled and "momentum = 0.1" in live_explorer.caption.value


def test_a_static_page_draws_in_the_browser_even_under_the_inline_backend(monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "inline")  # the site build sets both: it has no front end for ipympl
    monkeypatch.setenv(STATIC_ENV, "1")
    assert browser_figures_enabled()
    monkeypatch.setenv(STATIC_ENV, "0")
    assert not browser_figures_enabled()


def test_a_static_page_without_the_browser_display_fixes_every_control(explorer_inputs, monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    recorder, test, _ = explorer_inputs
    explorer = momentum_explorer(recorder, test, in_browser=False, step=40)
    assert explorer.momentum.disabled and explorer.cumulative.disabled and explorer.readout in explorer.children
    assert "momentum = 0.1" in explorer.caption.value  # nothing moves, so the caption stays true


def test_the_browser_shows_the_table_entry_of_the_slider_value(static_explorer):
    """render() of explorer_canvas.js on the widget's state: a momentum or cumulative change shows its readout."""
    figure = static_explorer.display.widget
    readouts = figure.readouts
    with widget_page(figure) as page:
        assert page.text(".bnlib-explorer-readout") == readouts["momentum"][200]
        before = page.canvas_pixels(".bnlib-explorer-canvas")
        for index in (0, 57, 299, 300):
            page.set("momentum", page.evaluate(f"Math.pow(10, -3 + {index} * 0.01)"))  # as the slider computes it
            assert page.text(".bnlib-explorer-readout") == readouts["momentum"][index]
        assert page.canvas_pixels(".bnlib-explorer-canvas") != before  # the running line moved
        page.set("cumulative", True)
        assert page.text(".bnlib-explorer-readout") == readouts["cumulative"]
