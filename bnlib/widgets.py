"""The momentum explorer: drag BatchNorm's momentum and watch running statistics and eval accuracy follow.

Nothing is retrained: running statistics never feed back into training, so the explorer replays
the recorded batch statistics with the chosen momentum (`bnlib.stats`). The figure is made once;
each change updates the artists in place. With ipympl (`%matplotlib widget`) the canvas is a live
widget; otherwise the figure is shown as a PNG re-rendered after each change (static fallback).
"""

import bisect
import io
import math
import traceback
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backend_bases import DrawEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullLocator

from bnlib import stats

MAX_DOTS = 2000  # batch statistics drawn per panel; the running line is always drawn exactly
INITIAL_VALUES = {"mean": 0.0, "var": 1.0}  # what nn.BatchNorm1d starts its buffers at


def ipympl_active():
    """True when matplotlib draws through ipympl (`%matplotlib widget`), whose canvas is a live widget."""
    backend = matplotlib.get_backend().lower()
    return backend in {"widget", "ipympl"} or "ipympl" in backend


@dataclass
class Panel:
    """The artists of one panel (batch means or batch variances), updated in place."""

    axes: object
    dots: object  # per-batch values of the chosen unit, thinned to MAX_DOTS
    running: object  # running value for the chosen momentum, steps 0..current step
    reference: object  # whole-training-set value at the kept weights
    current: object  # the running value at the current step


class CachedBackgroundFigure(Figure):
    """A Figure that keeps the pixels of everything but its `dynamic` artists between screen draws.

    Dragging the momentum slider changes only the running lines and markers, yet a full draw
    re-renders every tick label, label and the legend (most of its time). A screen draw therefore
    draws the figure without the `dynamic` artists once, keeps that background, and then, while
    nothing else changed, only restores it and draws the dynamic artists on top. Every draw still
    shows everything, and saving (`savefig`, PNG/PDF/SVG export) always draws the whole figure.

    The dynamic artists do not mark the figure stale; any change to another artist does (that is
    matplotlib's staleness), as does a new size or dpi, and the next draw is then a full one.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dynamic = []  # drawn over the cached background, in this order
        self._background = None
        self._background_key = None

    def set_dynamic(self, artists):
        """Draw `artists` over the cached background; changing them no longer invalidates it."""
        self.dynamic = sorted(artists, key=lambda artist: artist.get_zorder())  # sort is stable: ties keep order
        for artist in self.dynamic:
            artist.stale_callback = None  # their changes must not make the figure (and the background) stale
        self._background = None

    def draw(self, renderer):
        canvas = self.canvas
        cacheable = (
            self.dynamic
            and self.get_visible()
            and not canvas.is_saving()
            and hasattr(renderer, "copy_from_bbox")
            and hasattr(renderer, "restore_region")
        )
        if not cacheable:
            self._background = None
            return super().draw(renderer)
        key = (renderer.width, renderer.height, self.dpi)
        if self._background is not None and self._background_key == key and not self.stale:
            renderer.restore_region(self._background)
        else:
            self._background = None
            try:
                for artist in self.dynamic:
                    artist.set_animated(True)  # left out of a screen draw (not of a saved one)
                with canvas.callbacks.blocked(signal="draw_event"):  # sent once below, when all is drawn
                    super().draw(renderer)
            finally:
                for artist in self.dynamic:
                    artist.set_animated(False)
            self._background = renderer.copy_from_bbox(self.bbox)
            self._background_key = key
        for artist in self.dynamic:
            if artist.get_visible():
                artist.draw(renderer)
        self.stale = False
        DrawEvent("draw_event", canvas, renderer)._process()


def reference_steps(kept_steps, limit):
    """At most `limit` of the kept steps, spread evenly on a log scale (population statistics cost a pass each)."""
    if len(kept_steps) <= limit:
        return list(kept_steps)
    positions = np.geomspace(1, len(kept_steps), limit) - 1  # dense among the early kept steps, sparse later
    return [kept_steps[index] for index in np.unique(np.round(positions).astype(int))]


def population_at_steps(recorder, loader, steps, device=None):
    """{layer name: (steps (K,), means (K, units), unbiased variances (K, units))} of all of `loader` at kept steps."""
    per_step = [stats.population_stats(recorder.model_at(step), loader, device) for step in steps]
    return {
        name: (
            np.array(steps),
            torch.stack([entry[name].mean for entry in per_step]).numpy(),
            torch.stack([entry[name].var for entry in per_step]).numpy(),
        )
        for name in recorder.recording
    }


def play_frames(total_steps, count=150):
    """Steps the play control walks through: dense early (where momentum matters most), then log-spaced."""
    return np.unique(np.round(np.geomspace(1, max(total_steps, 1), count)).astype(int)).tolist()


def padded_limits(low, high, log):
    """Axis limits 5 % beyond [low, high] (on a log axis, 5 % of the decades)."""
    if log:
        low, high = np.log10(low), np.log10(high)
    margin = 0.05 * (high - low) or 0.05
    low, high = low - margin, high + margin
    return (10**low, 10**high) if log else (low, high)


def set_limits(setter, current, limits):
    """Call `setter(*limits)` unless the axis already has them: setting limits, even the same, forces a full draw."""
    limits = tuple(float(limit) for limit in limits)
    if tuple(float(limit) for limit in current) != limits:
        setter(*limits)


def thin(count, limit):
    """Indices 0..count-1 with a stride that keeps at most `limit` of them."""
    return np.arange(0, count, max(1, math.ceil(count / limit)))


class MomentumExplorer(widgets.VBox):
    """Controls (`momentum`, `cumulative`, `layer`, `unit`, `step`, `play`, `view`), a two-panel figure and `readout`.

    `update()` redraws from the controls' values (every control calls it); `figure`, `canvas` and
    `panels` ({"mean": Panel, "var": Panel}) expose what is drawn; errors go to `output`.
    """

    def __init__(
        self,
        recorder,
        test_loader,
        population_loader=None,
        *,
        step=None,
        steps_per_epoch=None,
        momentum=0.1,
        device=None,
        max_dots=MAX_DOTS,
        max_reference_steps=16,
        figsize=(8, 5.5),
    ):
        self.recorder = recorder
        self.batch = {
            name: {"mean": layer.mean.numpy(), "var": layer.var.numpy()} for name, layer in recorder.recording.items()
        }  # name -> statistic -> (steps, units)
        self.total_steps = recorder.steps
        self.steps_per_epoch = steps_per_epoch
        self.max_dots = max_dots
        self.evaluator = stats.KeptWeightsEvaluator(recorder, test_loader, device)
        self.reference = None
        if population_loader is not None:
            kept = reference_steps(sorted(recorder.weights), max_reference_steps)
            self.reference = population_at_steps(recorder, population_loader, kept, device)
        self._accuracy_cache = {}
        self.last_error = None
        self._build_controls(momentum, self.total_steps if step is None else step)
        self._build_figure(figsize)
        self.output = widgets.Output()
        display_area = self.canvas if isinstance(self.canvas, widgets.DOMWidget) else self.image
        super().__init__([self.controls, self.caption, display_area, self.readout, self.output])
        for control in (self.momentum, self.cumulative, self.layer, self.unit, self.step, self.view):
            control.observe(self._on_change, names="value")
        self.play.observe(self._on_play, names="value")
        self.step.observe(self._on_step, names="value")
        self._syncing_play = False
        self._on_change()

    def _build_controls(self, momentum, step):
        names, fit = list(self.batch), {"description_width": "initial"}  # labels at their natural width
        self.momentum = widgets.FloatLogSlider(
            value=momentum,
            base=10,
            min=-3,
            max=0,
            step=0.01,
            description="momentum",
            readout_format=".3g",
            style=fit,
            layout=widgets.Layout(width="420px"),
        )
        self.cumulative = widgets.Checkbox(
            value=False,
            description="cumulative average (momentum=None)",
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 0 0 24px"),
        )
        self.layer = widgets.Dropdown(
            options=names, value=names[0], description="BN layer", style=fit, layout=widgets.Layout(width="160px")
        )
        self.unit = widgets.BoundedIntText(
            value=0,
            min=0,
            max=self.batch[names[0]]["mean"].shape[1] - 1,
            description="unit",
            style=fit,
            layout=widgets.Layout(width="120px"),
        )
        self.view = widgets.ToggleButtons(
            options=[("x axis: up to the current step", "current"), ("x axis: whole run", "whole")],
            value="current",
            style={"button_width": "auto"},
            layout=widgets.Layout(margin="0 0 0 24px"),
        )
        self.step = widgets.IntSlider(
            value=step, min=0, max=self.total_steps, description="step", style=fit, layout=widgets.Layout(width="600px")
        )
        self.frames = play_frames(self.total_steps)
        self.play = widgets.Play(
            value=self._frame_index(step), min=0, max=len(self.frames) - 1, interval=150, description="play"
        )
        self.readout = widgets.Label()
        self.caption = widgets.Label()  # what the figure shows; a widget label costs nothing to redraw
        spaced = widgets.Layout(align_items="center")
        self.controls = widgets.VBox(
            [
                widgets.HBox([self.momentum, self.cumulative], layout=spaced),
                widgets.HBox([self.layer, self.unit, self.view], layout=spaced),
                widgets.HBox([self.play, self.step], layout=spaced),
            ]
        )

    def _build_figure(self, figsize):
        # Fixed margins: a layout engine would re-measure every label on each redraw (most of the draw time).
        if ipympl_active():
            with plt.ioff():  # shown inside this widget, not by the notebook
                self.figure = plt.figure(figsize=figsize, FigureClass=CachedBackgroundFigure)
            self.figure.canvas.header_visible = False
        else:
            self.figure = CachedBackgroundFigure(figsize=figsize)
            FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.1, right=0.98, top=0.92, bottom=0.1, hspace=0.08)
        self.canvas = self.figure.canvas
        self.image = widgets.Image(format="png")
        # Not sharex, and labels at fixed places: both would make every draw measure all tick labels.
        mean_axes, var_axes = self.figure.subplots(2, 1)
        self.panels = {key: self._make_panel(axes, key) for key, axes in (("mean", mean_axes), ("var", var_axes))}
        handles = [line for line in mean_axes.lines if not line.get_label().startswith("_")]
        self.figure.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 1.0),
            ncols=len(handles),
            fontsize="small",
            frameon=False,
        )  # above the panels, where it never hides data
        mean_axes.tick_params(labelbottom=False)
        var_axes.set_xlabel("training step")
        var_axes.xaxis.set_label_coords(0.5, -0.14)
        # What a momentum (or, on the whole-run axis, a step) changes, and the spines, which are drawn over it;
        # the rest is redrawn only when it changes.
        self.figure.set_dynamic(
            [
                artist
                for panel in self.panels.values()
                for artist in (panel.running, panel.reference, panel.current, *panel.axes.spines.values())
            ]
        )
        self._static_key = None  # (layer, unit, x_max) the dots, reference and y limits were last set for

    def _make_panel(self, axes, key):
        (dots,) = axes.plot([], [], ".", color="0.45", markersize=4, alpha=0.5, label="batch statistic")
        (running,) = axes.plot([], [], color="C0", linewidth=1.8, label="running buffer")
        label = "whole training set (at kept weights)" if self.reference is not None else "_nolegend_"
        (reference,) = axes.plot([], [], "o--", color="C3", markersize=3, linewidth=1, label=label)
        (current,) = axes.plot([], [], "o", color="C0", markersize=7, markeredgecolor="black", label="_current")
        if key == "var":  # variances span decades: the initial running_var of 1 would squash the rest
            axes.set_yscale("log")
            axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
            axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # plain text: mathtext labels draw slowly
            axes.yaxis.set_minor_locator(NullLocator())
        else:
            axes.yaxis.set_major_locator(MaxNLocator(nbins=4))
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # few ticks: tick labels cost the most
        axes.set_ylabel(f"running_{key} vs batch {key}" + (" (log)" if key == "var" else ""))
        axes.yaxis.set_label_coords(-0.075, 0.5)
        return Panel(axes, dots, running, reference, current)

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

    def update(self):
        """Redraw the running statistics, reference, caption and readout for the controls' current values."""
        try:
            self._update()
            self.last_error = None
        except Exception as error:  # shown under the figure instead of vanishing into the widget log
            self.last_error = error
            self.output.append_stderr(traceback.format_exc())

    def _update(self):
        name, momentum, step = self.layer.value, self.current_momentum, self.step.value
        units = self.batch[name]["mean"].shape[1]
        self.unit.max = units - 1
        unit = min(self.unit.value, units - 1)
        self.momentum.disabled = momentum is None
        x_max = step if self.view.value == "current" else self.total_steps
        static_changed = (name, unit, x_max) != self._static_key
        self._static_key = None  # until every panel is updated
        for key, panel in self.panels.items():
            self._update_panel(panel, key, name, unit, momentum, step, x_max, static_changed)
            set_limits(panel.axes.set_xlim, panel.axes.get_xlim(), (0, max(x_max, 1)))
        self._static_key = (name, unit, x_max)
        self.caption.value = self._caption(name, unit, momentum, step)
        self.readout.value = self._readout(step, momentum)
        self._render()

    def _update_panel(self, panel, key, name, unit, momentum, step, x_max, static_changed=True):
        batch, init = self.batch[name][key][:, unit], INITIAL_VALUES[key]
        running = stats.replay_running_average(batch[:step], momentum, init)  # (step + 1,): after 0..step steps
        panel.running.set_data(np.arange(step + 1), running)
        panel.current.set_data([step], [running[-1]])
        if static_changed:  # set_data marks the figure stale, so the next draw is a full one
            shown = thin(x_max, self.max_dots)
            panel.dots.set_data(shown + 1, batch[shown])  # row i is the batch of step i + 1
        visible = [batch[:x_max], [init]]
        if self.reference is not None:
            kept, values = self.reference[name][0], self.reference[name][1 if key == "mean" else 2][:, unit]
            panel.reference.set_data(kept, values)  # a dynamic artist: free to set
            visible.append(values[kept <= x_max])
        visible = np.concatenate(visible)
        if panel.axes.get_yscale() == "log":
            visible = visible[visible > 0]  # a dead unit's variance of 0 has no place on a log axis
        low, high = visible.min(initial=init), visible.max(initial=init)
        limits = padded_limits(low, high, panel.axes.get_yscale() == "log")
        set_limits(panel.axes.set_ylim, panel.axes.get_ylim(), limits)

    def _caption(self, name, unit, momentum, step):
        epoch = f" (epoch {step / self.steps_per_epoch:.2f})" if self.steps_per_epoch else ""
        rule = "cumulative average" if momentum is None else f"momentum = {momentum:.3g}"
        return f"BN layer {name}, unit {unit}, {rule}: step {step} of {self.total_steps}{epoch}"

    def accuracy_at(self, step, momentum):
        """Eval-mode test accuracy (percent) of the weights kept at `step` with the running stats for `momentum`."""
        key = (step, None if momentum is None else round(momentum, 12))
        if key not in self._accuracy_cache:
            layer_stats = stats.running_stats_at(self.recorder.recording, step, momentum)
            self._accuracy_cache[key] = self.evaluator.accuracy(step, layer_stats)
        return self._accuracy_cache[key]

    def _readout(self, step, momentum):
        kept = self.recorder.nearest_kept_step(step)
        accuracy = self.accuracy_at(kept, momentum)
        where = f"step {kept}" if kept == step else f"step {kept} (nearest kept weights to step {step})"
        rule = "the cumulative average" if momentum is None else f"momentum {momentum:.3g}"
        return f"Eval-mode test accuracy at {where}, running statistics from {rule}: {accuracy:.2f} %"

    def _render(self):
        if isinstance(self.canvas, widgets.DOMWidget):
            self.canvas.draw_idle()
        else:
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png")
            self.image.value = buffer.getvalue()


def momentum_explorer(recorder, test_loader, population_loader=None, **options):
    """A MomentumExplorer for a finished BatchStatsRecorder (with kept weights); display it in a notebook cell.

    `test_loader` gives the readout's accuracy; `population_loader` (the training set), when given,
    draws the whole-training-set statistics at up to `max_reference_steps` kept steps as the
    reference (one pass over it per step). Options: `step` (default: the last), `steps_per_epoch`,
    `momentum`, `device`, `max_dots`, `max_reference_steps`, `figsize`.
    """
    return MomentumExplorer(recorder, test_loader, population_loader, **options)
