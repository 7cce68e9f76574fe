"""The momentum explorer: drag BatchNorm's momentum and watch running statistics and eval accuracy follow.

Nothing is retrained: running statistics never feed back into training, so the explorer replays
the recorded batch statistics with the chosen momentum (`bnlib.stats.running`). The figure
(`bnlib.widgets.explorer_figure`) is made once; each change updates its artists in place and its display,
chosen once when the explorer is made (`bnlib.widgets.displays`), shows it: in the browser (anywidget),
on ipympl's canvas, or as a PNG image. Whichever it is, the explorer's output also carries a PNG of its
current state, which static views (HTML export, a saved notebook) show.

Made for a static page (`BNLIB_STATIC=1`, no kernel behind it), the browser display also carries the readout
for every momentum of the slider's grid, so the momentum and the cumulative average still work there; the
layer, unit, step and x axis stay at what was built, and the explorer says so.
"""

import bisect
from dataclasses import replace

import ipywidgets as widgets
import numpy as np

from bnlib.stats.evaluation import KeptWeightsEvaluator
from bnlib.stats.population import population_at_steps
from bnlib.stats.running import running_stats_at
from bnlib.widgets.backend import static_page
from bnlib.widgets.displays import check_display, choose_display, figure_display, redraw_showing_errors, with_png
from bnlib.widgets.explorer_figure import MAX_DOTS, ExplorerFigure, View


def reference_steps(kept_steps, limit):
    """At most `limit` of the kept steps, spread evenly on a log scale (population statistics cost a pass each)."""
    if len(kept_steps) <= limit:
        return list(kept_steps)
    positions = np.geomspace(1, len(kept_steps), limit) - 1  # dense among the early kept steps, sparse later
    return [kept_steps[index] for index in np.unique(np.round(positions).astype(int))]


def slider_grid(slider):
    """Every value a FloatLogSlider can take: base ** exponent, the exponents from `min` to `max` by `step`."""
    count = round((slider.max - slider.min) / slider.step) + 1
    return [slider.base ** (slider.min + index * slider.step) for index in range(count)]


def play_frames(total_steps, count=150):
    """Steps the play control walks through: dense early (where momentum matters most), then log-spaced."""
    return np.unique(np.round(np.geomspace(1, max(total_steps, 1), count)).astype(int)).tolist()


class MomentumExplorer(widgets.VBox):
    """Controls (`momentum`, `cumulative`, `layer`, `unit`, `step`, `play`, `view`), a two-panel figure and `readout`.

    `display` ("browser", "canvas" or "image"; None: `choose_display()`) says where the figure is shown; the
    display object is `display`, its widget sits in the layout. `update()` redraws from the controls' values
    (every control calls it); `figure` and `panels` ({"mean": Panel, "var": Panel}) expose what is drawn;
    errors go to `output`.
    """

    def __init__(self, recorder, test_loader, population_loader=None, *, display=None, step=None,
                 steps_per_epoch=None, momentum=0.1, device=None, max_dots=MAX_DOTS, max_reference_steps=16,
                 figsize=(8, 5.5)):  # fmt: skip
        display = check_display(choose_display() if display is None else display)
        self.recorder = recorder
        batch = {name: {"mean": layer.mean.numpy(), "var": layer.var.numpy()}
                 for name, layer in recorder.recording.items()}  # name -> statistic -> (steps, units)
        self.total_steps = recorder.steps
        self.steps_per_epoch = steps_per_epoch
        self.evaluator = KeptWeightsEvaluator(recorder, test_loader, device)
        self.reference = None
        if population_loader is not None:
            kept = reference_steps(sorted(recorder.weights), max_reference_steps)
            self.reference = population_at_steps(recorder, population_loader, kept, device)
        self._accuracy_cache = {}
        self.last_error = None
        self._build_controls(batch, momentum, self.total_steps if step is None else step)
        self.plot = ExplorerFigure(batch, self.reference, display=display, max_dots=max_dots, figsize=figsize)
        self.figure, self.panels = self.plot.figure, self.plot.panels
        self.display = self._make_display(display)
        self.output = widgets.Output()
        self.static = static_page()
        # On a static page the browser figure shows the readout (from its table); the Label would stay as built.
        self.readout_in_figure = self.static and display == "browser"
        super().__init__([self.controls, self.caption, self.display.widget,
                          *([] if self.readout_in_figure else [self.readout]), self.output])
        for control in (self.momentum, self.cumulative, self.layer, self.unit, self.step, self.view):
            control.observe(self._on_change, names="value")
        self.play.observe(self._on_play, names="value")
        self.step.observe(self._on_step, names="value")
        self._syncing_play = False
        self._on_change()
        if self.static:
            self._fix_kernel_controls(browser_moves_momentum=display == "browser")

    def _make_display(self, display):
        """The display object for `display`, showing this explorer's figure."""
        if display == "browser":
            from bnlib.widgets.browser_display import BrowserDisplay  # here: anywidget is needed by this one only

            return BrowserDisplay(self.plot, self.momentum, self.cumulative)
        return figure_display(display, self.figure)

    def _build_controls(self, batch, momentum, step):
        names, fit = list(batch), {"description_width": "initial"}  # labels at their natural width
        self.momentum = widgets.FloatLogSlider(value=momentum, base=10, min=-3, max=0, step=0.01,
                                               description="momentum", readout_format=".3g", style=fit,
                                               layout=widgets.Layout(width="420px"))
        self.cumulative = widgets.Checkbox(value=False, description="cumulative average (momentum=None)",
                                           indent=False, layout=widgets.Layout(width="auto", margin="0 0 0 24px"))
        self.layer = widgets.Dropdown(options=names, value=names[0], description="BN layer", style=fit,
                                      layout=widgets.Layout(width="160px"))
        self.units = {name: statistics["mean"].shape[1] for name, statistics in batch.items()}
        self.unit = widgets.BoundedIntText(value=0, min=0, max=self.units[names[0]] - 1, description="unit",
                                           style=fit, layout=widgets.Layout(width="120px"))
        self.view = widgets.ToggleButtons(
            options=[("x axis: up to the current step", "current"), ("x axis: whole run", "whole")],
            value="current", style={"button_width": "auto"}, layout=widgets.Layout(margin="0 0 0 24px"))
        self.step = widgets.IntSlider(value=step, min=0, max=self.total_steps, description="step", style=fit,
                                      layout=widgets.Layout(width="600px"))
        self.frames = play_frames(self.total_steps)
        self.play = widgets.Play(value=self._frame_index(step), min=0, max=len(self.frames) - 1, interval=150,
                                 description="play")
        self.readout = widgets.Label()
        self.caption = widgets.Label()  # what the figure shows; a widget label costs nothing to redraw
        spaced = widgets.Layout(align_items="center")
        self.controls = widgets.VBox([
            widgets.HBox([self.momentum, self.cumulative], layout=spaced),
            widgets.HBox([self.layer, self.unit, self.view], layout=spaced),
            widgets.HBox([self.play, self.step], layout=spaced),
        ])
        for control, name in ((self.momentum, "momentum"), (self.cumulative, "cumulative"), (self.step, "step")):
            control.add_class(f"bnlib-explorer-{name}")  # for driving the explorer in a browser

    def _fix_kernel_controls(self, browser_moves_momentum):
        """For a static page: disable the controls that need a kernel and say so above the figure."""
        needs_kernel = [self.layer, self.unit, self.view, self.step, self.play]
        if not browser_moves_momentum:
            needs_kernel += [self.momentum, self.cumulative]
        for control in needs_kernel:
            control.disabled = True
        works = ("the momentum and the cumulative average move the lines; layer, unit, step and x axis stay as built"
                 if browser_moves_momentum else "the explorer shows the picture as built")
        note = widgets.HTML(f"<i>On this page, without a kernel, {works}: run the notebook to use this.</i>")
        note.add_class("bnlib-needs-kernel")
        self.controls.children = (*self.controls.children, note)

    def static_readouts(self):
        """The readout at the current step for every momentum of the slider's grid (`momentum`, in grid order) and
        for the cumulative average: what the browser figure shows on a static page, where no kernel computes it."""
        view = self.current_view()
        return {"exponent_min": self.momentum.min, "exponent_step": self.momentum.step,
                "momentum": [self._readout(replace(view, momentum=value)) for value in slider_grid(self.momentum)],
                "cumulative": self._readout(replace(view, momentum=None))}

    def _on_change(self, change=None):
        self.update()

    def _on_play(self, change):
        if not self._syncing_play:
            self.step.value = self.frames[change["new"]]

    def _frame_index(self, step):
        """The first play frame at or after `step`."""
        return min(bisect.bisect_left(self.frames, step), len(self.frames) - 1)

    def _on_step(self, change):
        """Keep Play at the step the slider shows, so that Play goes on from there (not from the start)."""
        self._syncing_play = True
        try:
            self.play.value = self._frame_index(change["new"])
        finally:
            self._syncing_play = False

    @property
    def current_momentum(self):
        """The momentum being shown: the slider's value, or None for the cumulative average."""
        return None if self.cumulative.value else self.momentum.value

    def current_view(self):
        """The View the controls ask for (the unit clipped to the layer's units)."""
        units = self.units[self.layer.value]
        x_max = self.step.value if self.view.value == "current" else self.total_steps
        return View(self.layer.value, min(self.unit.value, units - 1), self.current_momentum, self.step.value, x_max)

    def update(self):
        """Redraw the running statistics, reference, caption and readout for the controls' current values (an error
        is shown in `output`)."""
        redraw_showing_errors(self, self._draw_view)

    def _draw_view(self):
        view = self.current_view()
        self.unit.max = self.units[view.layer] - 1
        self.momentum.disabled = view.momentum is None
        self.plot.show(view)
        self.caption.value = self._caption(view)
        self.readout.value = self._readout(view)
        if self.readout_in_figure:  # a cell that moves the step before the page is saved gets that step's table
            self.display.widget.readouts = self.static_readouts()

    def _caption(self, view):
        epoch = f" (epoch {view.step / self.steps_per_epoch:.2f})" if self.steps_per_epoch else ""
        rule = "cumulative average" if view.momentum is None else f"momentum = {view.momentum:.3g}"
        rule = "" if self.readout_in_figure else f", {rule}"  # the caption is not redrawn without a kernel
        return f"BN layer {view.layer}, unit {view.unit}{rule}: step {view.step} of {self.total_steps}{epoch}"

    def accuracy_at(self, step, momentum):
        """Eval-mode test accuracy (percent) of the weights kept at `step` with the running stats for `momentum`."""
        key = (step, None if momentum is None else round(momentum, 12))
        if key not in self._accuracy_cache:
            layer_stats = running_stats_at(self.recorder.recording, step, momentum)
            self._accuracy_cache[key] = self.evaluator.accuracy(step, layer_stats)
        return self._accuracy_cache[key]

    def _readout(self, view):
        kept = self.recorder.nearest_kept_step(view.step)
        accuracy = self.accuracy_at(kept, view.momentum)
        rule = "the cumulative average" if view.momentum is None else f"momentum {view.momentum:.3g}"
        where = f"the weights kept at step {kept}"
        if kept != view.step:
            where += f", the recorded step nearest to step {view.step}"
        return f"Eval-mode test accuracy with {where}, running statistics from {rule}: {accuracy:.2f} %"

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, plus a PNG of the current state for places where widgets do not run."""
        return with_png(super()._repr_mimebundle_(**kwargs), self.display)


def momentum_explorer(recorder, test_loader, population_loader=None, *, in_browser=None, **options):
    """A momentum explorer for a finished BatchStatsRecorder (with kept weights); display it in a notebook cell.

    `test_loader` gives the readout's accuracy; `population_loader` (the training set), when given,
    draws the whole-training-set statistics at up to `max_reference_steps` kept steps as the
    reference (one pass over it per step). `in_browser` (default: where anywidget imports and
    `BNLIB_BACKEND` is not "inline") draws the momentum-dependent lines in the browser, so that a
    slider step shows within a frame instead of after a kernel round trip (bnlib.widgets.browser_display);
    otherwise the figure is ipympl's canvas where ipympl draws, else a PNG image.
    Options: `step` (default: the last), `steps_per_epoch`, `momentum`, `device`, `max_dots`,
    `max_reference_steps`, `figsize`.
    """
    return MomentumExplorer(recorder, test_loader, population_loader, display=choose_display(in_browser), **options)
