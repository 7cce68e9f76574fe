"""The drift player: a step slider (and Play) over training, with the histogram of one sigmoid's input at that step.

One histogram per network, all from the same tracked images, on a fixed x axis (the y axis fits each
step's counts), so the class sees the input drift without BatchNorm and hold still with it. The
figure is made once; a new step only changes the bar heights, the percentile lines, the titles and
the y limits, then redraws. Its display (`bnlib.widgets.displays`) is ipympl's canvas where ipympl draws,
else a PNG image re-rendered after each change; made for a static page (`BNLIB_STATIC=1`), it is every
checkpoint's picture, rendered once and flipped through in the browser (`bnlib.widgets.frames_display`).
"""

import ipywidgets as widgets
import numpy as np

from bnlib.studies.figure1 import PERCENTILES
from bnlib.widgets.backend import browser_figures_enabled, static_page
from bnlib.widgets.displays import (
    choose_display,
    figure_display,
    figure_png,
    new_figure,
    redraw_showing_errors,
    with_png,
)

RANGE_PERCENTILES = (0.5, 99.5)  # a network's x axis spans these percentiles of all its inputs at all steps


def histogram_edges(samples, bins):
    """Fixed bin edges (bins + 1,) for all checkpoints of `samples` (checkpoints, images): rare extremes left out."""
    low, high = np.percentile(samples, RANGE_PERCENTILES)
    return np.linspace(low, high if high > low else low + 1.0, bins + 1)


def histogram_counts(values, edges):
    """Counts of `values` in the bins `edges`; values beyond the edges count in the outer bins."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]


class DriftPlayer(widgets.VBox):
    """Controls `step` (an IntSlider over the tracked steps) and `play`, a figure with one histogram per network.

    `samples`: {network: (checkpoints, images) array of the tracked input}; `steps`: the checkpoints' steps.
    `figure`, `bars` and `lines` ({network: artist / [one line per percentile]}) expose what is drawn, `display`
    shows it (a CanvasDisplay or ImageDisplay); errors go to `output`.
    """

    def __init__(self, steps, samples, *, bins=40, figsize=(10, 3.6), unit_label="input to the sigmoid"):
        self.steps = np.asarray(steps)
        self.samples = {name: np.asarray(values) for name, values in samples.items()}
        self.edges = {name: histogram_edges(values, bins) for name, values in self.samples.items()}
        stride = int(self.steps[1] - self.steps[0]) if len(self.steps) > 1 else 1
        self.step = widgets.IntSlider(value=int(self.steps[0]), min=int(self.steps[0]), max=int(self.steps[-1]),
                                      step=stride, description="step", layout=widgets.Layout(width="600px"))
        self.play = widgets.Play(value=self.step.value, min=self.step.min, max=self.step.max, step=stride,
                                 interval=100, description="play")
        widgets.link((self.play, "value"), (self.step, "value"))  # in the kernel: works without a front end too
        self.step.add_class("bnlib-drift-step")  # for driving the player in a browser
        frames = static_page() and browser_figures_enabled()  # a page without a kernel, and anywidget to show it
        display = "image" if frames else choose_display(in_browser=False)  # the browser display: explorer only
        self.figure = new_figure(display, figsize, layout="constrained")
        self.bars, self.lines = {}, {}
        axes = self.figure.subplots(1, len(self.samples), squeeze=False)[0]
        for ax, (name, values) in zip(axes, self.samples.items(), strict=True):
            self._make_panel(ax, name, values, unit_label)
        self.display = self._frames_display() if frames else figure_display(display, self.figure)
        self.output = widgets.Output()
        super().__init__([widgets.HBox([self.play, self.step]), self.display.widget, self.output])
        self.step.observe(lambda change: self.update(), names="value")
        self.last_error = None
        self.update()

    def _make_panel(self, ax, name, values, unit_label):
        edges = self.edges[name]
        self.bars[name] = ax.stairs(np.zeros(len(edges) - 1), edges, fill=True, alpha=0.6)
        self.lines[name] = [ax.axvline(0, color="black", linewidth=2 if p == 50 else 1, linestyle="--")
                            for p in PERCENTILES]
        ax.set(xlim=(edges[0], edges[-1]), xlabel=unit_label, ylabel="images")

    def checkpoint(self, step):
        """Index of the tracked checkpoint at or just before `step`."""
        return max(int(np.searchsorted(self.steps, step, side="right")) - 1, 0)

    def update(self):
        """Redraw every histogram and percentile line for the slider's step (an error is shown in `output`)."""
        redraw_showing_errors(self, self._draw_step)

    def _frames_display(self):
        """Every checkpoint's picture in a FramesDisplay, Play linked to the slider in the browser too."""
        from bnlib.widgets.frames_display import FramesDisplay  # here: anywidget is needed by this one only

        pngs, captions = [], []
        for index in range(len(self.steps)):
            self._draw_checkpoint(index)
            pngs.append(figure_png(self.figure))
            captions.append("; ".join(bars.axes.get_title() for bars in self.bars.values()))
        self.play_link = widgets.jslink((self.play, "value"), (self.step, "value"))
        return FramesDisplay(self.figure, self.step, self.steps, pngs, captions)

    def _draw_step(self):
        self._draw_checkpoint(self.checkpoint(self.step.value))

    def _draw_checkpoint(self, index):
        """Set every histogram, percentile line and title to checkpoint `index`."""
        for name, values in self.samples.items():
            counts = histogram_counts(values[index], self.edges[name])
            self.bars[name].set_data(counts)
            self.bars[name].axes.set_ylim(0, 1.05 * counts.max())  # the x axis stays: drift shows as a move
            quantiles = np.percentile(values[index], PERCENTILES)
            for line, value in zip(self.lines[name], quantiles, strict=True):
                line.set_xdata([value, value])
            self.bars[name].axes.set_title(f"{name}, step {self.steps[index]}: median {quantiles[1]:+.2f}")

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, plus a PNG of the current state for places where widgets do not run."""
        return with_png(super()._repr_mimebundle_(**kwargs), self.display)
