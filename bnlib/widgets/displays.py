"""Where a widget's matplotlib figure is shown, chosen once when the widget is made: a strategy object per display.

- "canvas": ipympl's canvas is the widget; a change redraws it in place (`draw_idle`).
- "image": the figure re-rendered as a PNG into an `ipywidgets.Image` after each change (no ipympl needed).
- "browser": the momentum explorer's lines drawn in the browser (`bnlib.widgets.browser_display`, anywidget).

Every display is a FigureDisplay: `figure`, `widget` (what the layout shows), `render()` (show the figure's
current state) and `png()` (PNG bytes of that state, which a widget's output carries for places where widgets
do not run).
"""

import base64
import io
import traceback

import ipywidgets as widgets
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bnlib.checks import check_choice
from bnlib.widgets.backend import browser_figures_enabled, ipympl_active

DISPLAYS = ("browser", "canvas", "image")


def choose_display(in_browser=None):
    """The display for a new widget: "browser" when `in_browser` (None: where anywidget imports and `BNLIB_BACKEND`
    is not "inline"), else "canvas" where ipympl draws, else "image"."""
    if in_browser is None:
        in_browser = browser_figures_enabled()
    if in_browser:
        return "browser"
    return "canvas" if ipympl_active() else "image"


def check_display(display):
    """`display` when it is one of DISPLAYS and can run here ("canvas" needs ipympl's backend); else ValueError."""
    check_choice("display", display, DISPLAYS)
    if display == "canvas" and not ipympl_active():
        raise ValueError(f"display='canvas' needs ipympl's backend (`%matplotlib widget`), got {plt.get_backend()!r}")
    return display


def new_figure(display, figsize, figure_class=Figure, **kwargs):
    """A `figure_class` figure for `display`: on ipympl's widget canvas for "canvas", else on a plain Agg canvas.

    Only the "canvas" figure goes through pyplot, under `plt.ioff()`: the widget shows it, not the notebook.
    """
    if check_display(display) == "canvas":
        with plt.ioff():
            figure = plt.figure(figsize=figsize, FigureClass=figure_class, **kwargs)
        figure.canvas.header_visible = False
        return figure
    figure = figure_class(figsize=figsize, **kwargs)
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure):
    """The figure as PNG bytes, as a screen draw shows it (a CachedBackgroundFigure draws over its background).

    Compressed lightly: the image display re-renders it on every slider move.
    """
    FigureCanvasAgg.draw(figure.canvas)  # ipympl's canvas is an Agg canvas too; this sends nothing to the page
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, np.asarray(figure.canvas.buffer_rgba()), format="png",
                            pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def redraw_showing_errors(widget, draw):
    """Call `draw()` (it updates `widget`'s artists), then `widget.display.render()`; `widget.last_error` is None after.

    An exception becomes `widget.last_error` and its traceback goes to `widget.output` (an ipywidgets.Output), so it
    shows under the figure instead of vanishing into the widget log of a slider callback.
    """
    try:
        draw()
        widget.display.render()
        widget.last_error = None
    except Exception as error:
        widget.last_error = error
        widget.output.append_stderr(traceback.format_exc())


def with_png(bundle, display):
    """A widget's mime `bundle` (None where it has no view) plus a PNG of `display`'s state, for static views."""
    if bundle is not None:
        bundle["image/png"] = base64.b64encode(display.png()).decode("ascii")
    return bundle


class FigureDisplay:
    """What every display has: the `figure` it shows, and `png()`; each kind adds `widget` and `render()`."""

    def __init__(self, figure):
        self.figure = figure

    def png(self):
        """The figure's current state as PNG bytes (all of it, whatever the display draws elsewhere)."""
        return figure_png(self.figure)


class CanvasDisplay(FigureDisplay):
    """ipympl's canvas is the widget: `render()` asks the page for a redraw, which ipympl sends as a PNG diff."""

    def __init__(self, figure):
        super().__init__(figure)
        self.widget = figure.canvas

    def render(self):
        self.figure.canvas.draw_idle()


class ImageDisplay(FigureDisplay):
    """An `ipywidgets.Image` of the figure: `render()` draws it to a new PNG (works wherever widgets run)."""

    def __init__(self, figure):
        super().__init__(figure)
        self.widget = widgets.Image(format="png")

    def render(self):
        self.widget.value = self.png()


def figure_display(display, figure):
    """The CanvasDisplay or ImageDisplay of `figure` (made by `new_figure(display, ...)`)."""
    classes = {"canvas": CanvasDisplay, "image": ImageDisplay}
    return classes[check_choice("display", display, tuple(classes))](figure)
