"""The explorer whose momentum lines are drawn in the browser: what the kernel sends, and the browser's replay."""

import base64
import io
from pathlib import Path

import ipywidgets
import numpy as np
import pytest
from PIL import Image

from bnlib.stats.running import replay_running_average
from bnlib.widgets.browser_display import BrowserDisplay
from bnlib.widgets.explorer import momentum_explorer
from tests.support.lab_server import CHROMIUM_ARGS, INSTALL_HINT, find_chromium

JS_MODULE = Path(__file__).resolve().parent.parent / "bnlib" / "widgets" / "explorer_canvas.js"


@pytest.fixture
def explorer(explorer_inputs):
    recorder, test, population = explorer_inputs
    return momentum_explorer(recorder, test, population, in_browser=True, steps_per_epoch=32, step=20)


def sent_series(figure, key):
    return np.frombuffer(getattr(figure, key), dtype=np.float64)


def test_the_browser_figure_takes_the_place_of_the_canvas(explorer):
    assert isinstance(explorer.display, BrowserDisplay) and explorer.last_error is None
    assert explorer.display.widget in explorer.children and explorer.figure.canvas not in explorer.children
    assert not any(isinstance(child, ipywidgets.Image) for child in explorer.children)  # no image display beside it
    links = {(link.source[1], link.target[1]) for link in explorer.display.links}
    assert all(link.source[0] in (explorer.momentum, explorer.cumulative) for link in explorer.display.links)
    assert links == {("value", "momentum"), ("value", "cumulative")}  # browser-side: no kernel round trip


def test_what_the_kernel_sends_matches_the_recording_and_the_axes(explorer, explorer_inputs):
    recorder, figure = explorer_inputs[0], explorer.display.widget
    layer = explorer.layer.value
    for key in ("mean", "var"):
        expected = getattr(recorder.recording[layer], key)[:, 0].double().numpy()
        np.testing.assert_array_equal(sent_series(figure, key), expected)
    assert figure.step == 20 and figure.momentum == pytest.approx(0.1) and figure.cumulative is False
    for sent, (key, panel) in zip(figure.panels, explorer.panels.items(), strict=True):
        assert sent["key"] == key and sent["xlim"] == [0.0, 20.0]
        assert sent["ylim"] == pytest.approx(list(panel.axes.get_ylim()), rel=1e-12)
        assert sent["log"] == (key == "var") and sent["init"] == {"mean": 0.0, "var": 1.0}[key]
    steps, means, _ = explorer.reference[layer]
    assert figure.reference["steps"] == list(steps) and figure.reference["mean"] == means[:, 0].tolist()
    png = Image.open(io.BytesIO(figure.background))
    assert png.size == (figure.width, figure.height) == (800, 550)


def test_a_momentum_change_sends_nothing_a_step_change_a_background(explorer, monkeypatch):
    figure, sent = explorer.display.widget, []
    # what goes to the browser (hold_sync also calls send_state with no keys, which sends nothing)
    monkeypatch.setattr(figure, "send_state", lambda key=None: sent.extend([key] if isinstance(key, str) else key))
    background = figure.background
    explorer.momentum.value = 0.01  # the browser has it through jslink and redraws by itself
    explorer.cumulative.value = True
    assert sent == [] and explorer.last_error is None
    explorer.step.value = 40
    assert {"background", "step", "panels"} <= set(sent) and "mean" not in sent
    assert figure.background != background and figure.step == 40 and figure.panels[0]["xlim"] == [0.0, 40.0]
    sent.clear()
    explorer.unit.value = 3
    assert {"mean", "var", "reference"} <= set(sent)
    expected = explorer.recorder.recording[explorer.layer.value].mean[:, 3].double().numpy()
    np.testing.assert_array_equal(sent_series(figure, "mean"), expected)


def test_a_high_density_screen_gets_a_sharper_background_of_the_same_size(explorer):
    figure = explorer.display.widget
    figure.pixel_ratio = 2.0  # as the browser reports it on such a screen
    png = Image.open(io.BytesIO(figure.background))
    assert png.size == (2 * figure.width, 2 * figure.height) and (figure.width, figure.height) == (800, 550)
    assert figure.panels[0]["box"][2] < 800  # the axes are still placed in CSS pixels
    explorer.figure.canvas._set_device_pixel_ratio(2.0)  # what ipympl does when its front end reports the screen
    explorer.step.value = 30  # a new background
    assert (figure.width, figure.height) == (800, 550)
    assert Image.open(io.BytesIO(figure.background)).size == (1600, 1100)


def test_the_background_leaves_out_the_momentum_lines_only(explorer):
    lines = [explorer.panels["mean"].running, explorer.panels["mean"].current]
    background = np.asarray(Image.open(io.BytesIO(explorer.display.widget.background)).convert("RGB"))
    full = np.asarray(Image.open(io.BytesIO(explorer.display.png())).convert("RGB"))
    assert all(line.get_visible() for line in lines)  # hidden only while the background was drawn
    differs = np.any(background != full, axis=2)
    assert 0 < differs.mean() < 0.05  # the lines are thin: most of the figure is the same pixels


def test_the_static_view_png_still_shows_everything(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle


@pytest.fixture(scope="module")
def replay_in_chromium():
    """explorer_canvas.js loaded as a module in headless Chromium; returns replay(batch, momentum, init) -> list."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"Chromium not found: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    source = base64.b64encode(JS_MODULE.read_bytes()).decode()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.evaluate(f"async () => {{ window.canvasModule = await import('data:text/javascript;base64,{source}'); }}")
        yield lambda batch, momentum, init: page.evaluate(
            "([batch, momentum, init]) => Array.from(window.canvasModule.replay(batch, batch.length, momentum, init))",
            [batch, momentum, init],
        )
        browser.close()


@pytest.mark.parametrize("momentum", [0.001, 0.1, 1.0, None])
def test_the_browser_replay_is_pytorchs_rule(momentum, explorer_inputs, replay_in_chromium):
    """explorer_canvas.js's replay against bnlib.stats.running (float64 both): the same running values."""
    batch = explorer_inputs[0].recording[next(iter(explorer_inputs[0].recording))].var[:, 1].double().numpy()
    replayed = replay_in_chromium(batch.tolist(), momentum, 1.0)
    np.testing.assert_allclose(replayed, replay_running_average(batch, momentum, 1.0), rtol=1e-12, atol=0)
