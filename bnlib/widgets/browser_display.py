"""The momentum explorer's browser display: its momentum-dependent lines drawn in the browser, a slider step in a frame.

With ipympl every slider step goes kernel -> replay -> matplotlib draw -> PNG diff -> browser (~120-180 ms
in JupyterLab). Here matplotlib draws only what does not depend on the momentum (axes, ticks, labels, batch
dots, legend) into a PNG background, and the browser (`explorer_canvas.js`, an anywidget) replays the running
average for the slider's momentum with PyTorch's rule and draws the running line, its marker and the
whole-training-set reference over it. The momentum slider and the cumulative checkbox are linked to the figure
in the browser (`jslink`), so a momentum step needs no kernel round trip; the accuracy readout still comes from
the kernel (on a static page, from the `readouts` table), and a new step, unit, layer or x axis sends a new
background. Imported only where this display is chosen: anywidget may be missing (then
`bnlib.widgets.displays` offers the canvas or image display).
"""

import io
from pathlib import Path

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets
from matplotlib.colors import to_hex

from bnlib.widgets.displays import FigureDisplay
from bnlib.widgets.explorer_figure import INITIAL_VALUES


class BrowserFigure(anywidget.AnyWidget):
    """A canvas: `background` (PNG bytes, `width` x `height` CSS px, times `pixel_ratio` in device pixels) with
    the running lines drawn over it in JS.

    `panels` place each panel's axes ([left, top, width, height] CSS px, limits, log scale, initial buffer value);
    `mean` / `var` are the unit's batch statistics (float64 bytes, one per step), `reference` the whole-set
    values at kept steps, `styles` the matplotlib line styles, and `step`, `momentum`, `cumulative` what to replay.
    """

    _esm = Path(__file__).with_name("explorer_canvas.js")
    background = traitlets.Bytes(b"").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    panels = traitlets.List().tag(sync=True)
    mean = traitlets.Bytes(b"").tag(sync=True)
    var = traitlets.Bytes(b"").tag(sync=True)
    reference = traitlets.Dict().tag(sync=True)
    styles = traitlets.Dict().tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    pixel_ratio = traitlets.Float(1.0).tag(sync=True)  # the screen's device pixels per CSS pixel, set by the browser
    momentum = traitlets.Float(0.1).tag(sync=True)
    cumulative = traitlets.Bool(False).tag(sync=True)
    # Empty in a kernel. On a static page: the readout for each momentum of the slider's grid, which the browser
    # shows under the canvas ({"exponent_min", "exponent_step", "momentum": [text per grid value], "cumulative"}).
    readouts = traitlets.Dict().tag(sync=True)


def line_style(line, dpi):
    """A matplotlib Line2D's look in canvas pixels (points * dpi / 72), for explorer_canvas.js."""
    pixels = dpi / 72
    dashes = [3.7 * line.get_linewidth() * pixels, 1.6 * line.get_linewidth() * pixels]  # matplotlib's "--"
    return {
        "color": to_hex(line.get_color()),
        "linewidth": line.get_linewidth() * pixels,
        "dashes": dashes if line.get_linestyle() == "--" else [],
        "markersize": line.get_markersize() * pixels,
        "markerfacecolor": to_hex(line.get_markerfacecolor()),
        "markeredgecolor": to_hex(line.get_markeredgecolor()),
        "markeredgewidth": line.get_markeredgewidth() * pixels,
    }


class BrowserDisplay(FigureDisplay):
    """The explorer's display in the browser: `widget` (a BrowserFigure), `render()` sends what changed of
    `plot` (an ExplorerFigure, at the View it last showed), `png()` the whole figure for static views.

    The `momentum` slider and the `cumulative` checkbox reach the figure in the browser (`links`, jslink), never
    from the kernel: a kernel update for an older slider value would move the lines back while the slider moves on.
    """

    def __init__(self, plot, momentum, cumulative):
        super().__init__(plot.figure)
        self.plot = plot
        self.widget = BrowserFigure(momentum=momentum.value, cumulative=cumulative.value)
        self.links = [widgets.jslink((momentum, "value"), (self.widget, "momentum")),
                      widgets.jslink((cumulative, "value"), (self.widget, "cumulative"))]
        self._background_key = self._series_key = None  # what the browser has
        self.widget.observe(self._on_pixel_ratio, names="pixel_ratio")

    def render(self):
        """Send what changed: the unit's series, a new background when anything but the momentum did, the step."""
        figure, plot, view = self.widget, self.plot, self.plot.view
        dpi = self._css_dpi()
        width, height = (int(round(size * dpi)) for size in self.figure.get_size_inches())
        with figure.hold_sync():
            if (view.layer, view.unit) != self._series_key:
                batch = plot.batch[view.layer]
                figure.mean = np.ascontiguousarray(batch["mean"][:, view.unit], dtype=np.float64).tobytes()
                figure.var = np.ascontiguousarray(batch["var"][:, view.unit], dtype=np.float64).tobytes()
                figure.reference = self._reference(view)
                self._series_key = (view.layer, view.unit)
            figure.styles = {name: line_style(getattr(plot.panels["mean"], name), dpi)
                             for name in ("running", "reference", "current")}
            if view.static_key != self._background_key:
                figure.width, figure.height = width, height
                figure.panels = [self._panel(key, panel, width, height) for key, panel in plot.panels.items()]
                figure.background = self._background_png()
                self._background_key = view.static_key
            figure.step = view.step

    def _css_dpi(self):
        """Figure pixels per inch at one device pixel per CSS pixel: a canvas told the screen's pixel ratio (as
        ipympl's front end tells its canvas) multiplies the figure's dpi by it (matplotlib's `device_pixel_ratio`)."""
        return self.figure.dpi / self.figure.canvas.device_pixel_ratio

    def _on_pixel_ratio(self, change):
        """A high-density screen: render the background again with that many pixels per CSS pixel."""
        self._background_key = None
        self.render()

    def _reference(self, view):
        if self.plot.reference is None:
            return {}
        steps, means, variances = self.plot.reference[view.layer]
        return {"steps": np.asarray(steps).tolist(), "mean": means[:, view.unit].tolist(),
                "var": variances[:, view.unit].tolist()}

    @staticmethod
    def _panel(key, panel, width, height):
        """Where one panel's axes sit in the PNG (pixels from the top left) and what they show."""
        box = panel.axes.get_position()  # figure fractions, from the bottom left
        pixels = [box.x0 * width, (1 - box.y1) * height, box.width * width, box.height * height]
        return {"key": key, "box": [float(value) for value in pixels],
                "xlim": [float(limit) for limit in panel.axes.get_xlim()],
                "ylim": [float(limit) for limit in panel.axes.get_ylim()],
                "log": panel.axes.get_yscale() == "log", "init": INITIAL_VALUES[key]}

    def _background_png(self):
        """The figure without the momentum-dependent lines, as PNG bytes at the screen's pixel density."""
        dynamic = [artist for panel in self.plot.panels.values()
                   for artist in (panel.running, panel.reference, panel.current)]
        for artist in dynamic:
            artist.set_visible(False)
        try:
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png", dpi=self._css_dpi() * self.widget.pixel_ratio)
            return buffer.getvalue()
        finally:
            for artist in dynamic:
                artist.set_visible(True)
