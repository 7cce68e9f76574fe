"""The momentum explorer's two-panel figure: batch statistics, running buffer and whole-set reference of one unit.

Made once, on the figure of the explorer's display (`bnlib.widgets.displays`); `show(view)` updates the
artists in place. Only the running line, the markers and the spines change with the momentum, so they are
the `dynamic` artists of a CachedBackgroundFigure.
"""

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullLocator

from bnlib.stats import running
from bnlib.widgets.cached_figure import CachedBackgroundFigure
from bnlib.widgets.displays import new_figure

MAX_DOTS = 2000  # batch statistics drawn per panel; the running line is always drawn exactly
INITIAL_VALUES = {"mean": 0.0, "var": 1.0}  # what nn.BatchNorm1d starts its buffers at


@dataclass(frozen=True)
class View:
    """What the figure shows: one unit of one layer, the momentum (None: cumulative average), up to `step`."""

    layer: str
    unit: int
    momentum: float | None
    step: int
    x_max: int  # the x axis ends here: the current step, or the whole run

    @property
    def static_key(self):
        """What the dots, the reference and the y limits depend on (not the momentum, not the step)."""
        return (self.layer, self.unit, self.x_max)


@dataclass
class Panel:
    """The artists of one panel (batch means or batch variances), updated in place."""

    axes: object
    dots: object  # per-batch values of the chosen unit, thinned to MAX_DOTS
    running: object  # running value for the chosen momentum, steps 0..current step
    reference: object  # whole-training-set value at the kept weights
    current: object  # the running value at the current step


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


class ExplorerFigure:
    """Two panels (means, variances) for `batch` ({layer: {"mean"/"var": (steps, units)}}) and an optional
    `reference` ({layer: (kept steps, means, variances)}), on a new figure for `display` ("canvas" or another
    of `bnlib.widgets.displays.DISPLAYS`); `figure` and `panels` are what is drawn, `view` the View last shown."""

    def __init__(self, batch, reference=None, *, display, max_dots=MAX_DOTS, figsize=(8, 5.5)):
        self.batch, self.reference, self.max_dots = batch, reference, max_dots
        self.figure = new_figure(display, figsize, figure_class=CachedBackgroundFigure)
        # Fixed margins: a layout engine would re-measure every label on each redraw (most of the draw time).
        self.figure.subplots_adjust(left=0.1, right=0.98, top=0.92, bottom=0.1, hspace=0.08)
        self.view = None
        # Not sharex, and labels at fixed places: both would make every draw measure all tick labels.
        mean_axes, var_axes = self.figure.subplots(2, 1)
        self.panels = {key: self._make_panel(axes, key) for key, axes in (("mean", mean_axes), ("var", var_axes))}
        handles = [line for line in mean_axes.lines if not line.get_label().startswith("_")]
        self.figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncols=len(handles),
                           fontsize="small", frameon=False)  # above the panels, where it never hides data
        mean_axes.tick_params(labelbottom=False)
        var_axes.set_xlabel("training step")
        var_axes.xaxis.set_label_coords(0.5, -0.14)
        # What a momentum (or, on the whole-run axis, a step) changes, and the spines, which are drawn over it;
        # the rest is redrawn only when it changes.
        self.figure.set_dynamic([
            artist
            for panel in self.panels.values()
            for artist in (panel.running, panel.reference, panel.current, *panel.axes.spines.values())
        ])
        self._static_key = None  # the View.static_key the dots, reference and y limits were last set for

    def _make_panel(self, axes, key):
        (dots,) = axes.plot([], [], ".", color="0.45", markersize=4, alpha=0.5, label="batch statistic")
        (running_line,) = axes.plot([], [], color="C0", linewidth=1.8, label="running buffer")
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
        return Panel(axes, dots, running_line, reference, current)

    def show(self, view):
        """Update every artist and axis limit for `view`; draws nothing (the caller renders)."""
        static_changed = view.static_key != self._static_key
        self._static_key = None  # until every panel is updated
        for key, panel in self.panels.items():
            self._update_panel(panel, key, view, static_changed)
            set_limits(panel.axes.set_xlim, panel.axes.get_xlim(), (0, max(view.x_max, 1)))
        self._static_key = view.static_key
        self.view = view

    def _update_panel(self, panel, key, view, static_changed):
        batch, init = self.batch[view.layer][key][:, view.unit], INITIAL_VALUES[key]
        values = running.replay_running_average(batch[: view.step], view.momentum, init)  # after 0..step steps
        panel.running.set_data(np.arange(view.step + 1), values)
        panel.current.set_data([view.step], [values[-1]])
        if static_changed:  # set_data marks the figure stale, so the next draw is a full one
            shown = thin(view.x_max, self.max_dots)
            panel.dots.set_data(shown + 1, batch[shown])  # row i is the batch of step i + 1
        visible = [batch[: view.x_max], [init]]
        if self.reference is not None:
            steps, means, variances = self.reference[view.layer]
            kept = (means if key == "mean" else variances)[:, view.unit]
            panel.reference.set_data(steps, kept)  # a dynamic artist: free to set
            visible.append(kept[steps <= view.x_max])
        self._set_y_limits(panel.axes, np.concatenate(visible), init)

    @staticmethod
    def _set_y_limits(axes, visible, init):
        log = axes.get_yscale() == "log"
        if log:
            visible = visible[visible > 0]  # a dead unit's variance of 0 has no place on a log axis
        low, high = visible.min(initial=init), visible.max(initial=init)
        set_limits(axes.set_ylim, axes.get_ylim(), padded_limits(low, high, log))
