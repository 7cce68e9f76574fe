"""Which display a widget's figure gets (browser canvas, ipympl canvas or PNG image), chosen once; what each shows."""

import base64
import io
import subprocess
import sys
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from ipywidgets import DOMWidget, Output
from PIL import Image

from bnlib.widgets import displays
from bnlib.widgets.backend import BACKEND_ENV
from bnlib.widgets.browser_display import BrowserDisplay
from bnlib.widgets.displays import CanvasDisplay, ImageDisplay, choose_display, figure_display, new_figure
from bnlib.widgets.explorer import MomentumExplorer, momentum_explorer

IPYMPL = "module://ipympl.backend_nbagg"


@pytest.fixture
def ipympl_backend():
    """pyplot on ipympl's widget backend for one test, then back to the backend it found, its figures closed."""
    backend = matplotlib.get_backend()
    plt.switch_backend(IPYMPL)
    yield
    plt.close("all")
    plt.switch_backend(backend)


@pytest.fixture(autouse=True)
def no_backend_override(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)


def figure_with_a_line(display):
    figure = new_figure(display, (3, 2), dpi=50)
    figure.subplots().plot([0, 1, 2], [0, 1, 0])
    return figure


def test_the_browser_where_anywidget_imports_unless_inline_is_forced(monkeypatch):
    assert choose_display() == "browser" and choose_display(in_browser=True) == "browser"
    monkeypatch.setenv(BACKEND_ENV, "inline")
    assert choose_display() == "image"
    monkeypatch.delenv(BACKEND_ENV)
    monkeypatch.setitem(sys.modules, "anywidget", None)  # `import anywidget` now raises ImportError
    assert choose_display() == "image"


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")  # inside ipympl's toolbar
def test_ipympl_canvas_where_ipympl_draws_else_the_image(ipympl_backend):
    assert choose_display(in_browser=False) == "canvas"
    plt.switch_backend("Agg")
    assert choose_display(in_browser=False) == "image"


def test_unknown_or_unavailable_displays_are_refused():
    with pytest.raises(ValueError, match=r"display must be one of \('browser', 'canvas', 'image'\), got 'png'"):
        new_figure("png", (3, 2))
    with pytest.raises(ValueError, match="display='canvas' needs ipympl's backend"):
        new_figure("canvas", (3, 2))  # the tests draw with Agg
    with pytest.raises(ValueError, match=r"display must be one of \('canvas', 'image'\), got 'browser'"):
        figure_display("browser", figure_with_a_line("image"))  # the browser display needs the explorer's figure


def test_image_display_shows_the_figure_as_drawn_outside_pyplot():
    figures = plt.get_fignums()
    figure = figure_with_a_line("image")
    display = figure_display("image", figure)
    assert plt.get_fignums() == figures  # its own figure: no cell end shows it a second time
    display.render()
    png = bytes(display.widget.value)
    figure.canvas.draw()
    drawn = np.asarray(figure.canvas.buffer_rgba())
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), drawn)  # lossless: the same pixels
    assert png == display.png()


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
def test_canvas_display_is_ipympls_canvas_made_under_ioff(ipympl_backend):
    figure = figure_with_a_line("canvas")
    display = figure_display("canvas", figure)
    assert isinstance(display, CanvasDisplay) and display.widget is figure.canvas
    assert isinstance(figure.canvas, DOMWidget)
    assert not figure.canvas.header_visible and not plt.isinteractive()
    assert display.png()[:4] == b"\x89PNG"


def test_with_png_adds_the_current_state_to_a_widget_view_only():
    display = figure_display("image", figure_with_a_line("image"))
    assert displays.with_png(None, display) is None
    bundle = displays.with_png({"text/plain": "VBox()"}, display)
    assert base64.b64decode(bundle["image/png"]) == display.png()


@pytest.mark.parametrize(("in_browser", "inline", "expected"), [
    (None, False, BrowserDisplay), (None, True, ImageDisplay), (True, True, BrowserDisplay),
    (False, False, ImageDisplay),
])  # fmt: skip
def test_momentum_explorer_chooses_its_display_once(explorer_inputs, monkeypatch, in_browser, inline, expected):
    if inline:
        monkeypatch.setenv(BACKEND_ENV, "inline")
    explorer = momentum_explorer(*explorer_inputs[:2], in_browser=in_browser, step=10)
    assert isinstance(explorer.display, expected) and explorer.display.widget is explorer.children[2]
    assert explorer.last_error is None


def test_the_explorer_refuses_an_unknown_display(explorer_inputs):
    with pytest.raises(ValueError, match="display must be one of"):
        MomentumExplorer(*explorer_inputs[:2], display="svg")


def test_importing_the_widgets_leaves_anywidget_out_until_the_browser_display_is_chosen():
    code = ("import sys\nfrom bnlib import widgets\n"
            "print(sorted(name for name in ('anywidget', 'bnlib.widgets.browser_display') if name in sys.modules))\n"
            "print(widgets.momentum_explorer.__module__, widgets.DriftPlayer.__module__)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[:2] == ["[]", "bnlib.widgets.explorer bnlib.widgets.drift_player"]


def test_a_failed_redraw_is_kept_and_shown_and_the_next_one_clears_it():
    renders = []
    widget = SimpleNamespace(display=SimpleNamespace(render=lambda: renders.append(1)), output=Output(),
                             last_error=None)  # fmt: skip

    def fail():
        raise RuntimeError("replay failed")

    displays.redraw_showing_errors(widget, fail)
    assert isinstance(widget.last_error, RuntimeError) and renders == []  # nothing half-drawn is shown
    assert "RuntimeError: replay failed" in widget.output.outputs[-1]["text"]
    displays.redraw_showing_errors(widget, lambda: None)
    assert widget.last_error is None and renders == [1]
