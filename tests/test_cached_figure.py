"""The matplotlib behaviours CachedBackgroundFigure depends on (see its module docstring), and its pixels.

If a matplotlib release changes one of them, these tests fail with the behaviour's name.
"""

import numpy as np
import pytest
from matplotlib.backend_bases import DrawEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bnlib.widgets.cached_figure import CachedBackgroundFigure


def figure_with_a_line(figure_class=CachedBackgroundFigure):
    figure = figure_class(figsize=(3, 2), dpi=50)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.plot([0, 1, 2], [0, 1, 0], color="0.5")
    (line,) = axes.plot([0, 2], [0, 1], color="C0")
    axes.set_xlim(0, 2), axes.set_ylim(0, 1)
    return figure, axes, line


def pixels(figure):
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


def test_behaviour_1_stale_callback_propagates_staleness_and_none_stops_it():
    figure, _, line = figure_with_a_line(Figure)
    figure.canvas.draw()
    assert callable(line.stale_callback), "matplotlib changed: Artist.stale_callback is no longer set"
    line.set_ydata([1, 0])
    assert figure.stale, "matplotlib changed: an artist's change no longer marks the figure stale"
    figure.canvas.draw()
    line.stale_callback = None
    line.set_ydata([0, 1])
    assert not figure.stale, "matplotlib changed: stale_callback = None no longer stops the propagation"


def test_behaviour_2_animated_artists_are_left_out_of_a_screen_draw_only():
    figure, _, line = figure_with_a_line(Figure)
    shown = pixels(figure)
    line.set_animated(True)
    assert not np.array_equal(pixels(figure), shown), "matplotlib changed: an animated artist is drawn on screen"
    line.set_visible(False)
    hidden = pixels(figure)
    line.set_visible(True)
    np.testing.assert_array_equal(pixels(figure), hidden)


def test_behaviour_3_draw_event_process_reaches_the_canvas_callbacks():
    figure, _, _ = figure_with_a_line(Figure)
    seen = []
    figure.canvas.mpl_connect("draw_event", seen.append)
    figure.canvas.draw()
    assert len(seen) == 1
    assert hasattr(DrawEvent, "_process"), "matplotlib changed: DrawEvent._process is gone"
    DrawEvent("draw_event", figure.canvas, figure.canvas.get_renderer())._process()
    assert len(seen) == 2 and seen[-1].name == "draw_event"


def test_behaviour_4_agg_renderer_copies_and_restores_a_region():
    figure, _, line = figure_with_a_line(Figure)
    before = pixels(figure)
    renderer = figure.canvas.get_renderer()
    saved = renderer.copy_from_bbox(figure.bbox)
    line.set_ydata([1, 0])
    assert not np.array_equal(pixels(figure), before)
    renderer.restore_region(saved)
    np.testing.assert_array_equal(np.asarray(figure.canvas.buffer_rgba()), before)


@pytest.mark.parametrize("change", ["dynamic", "static"])
def test_cached_draws_show_what_a_full_draw_shows_and_send_one_draw_event(change):
    figure, axes, line = figure_with_a_line()
    figure.set_dynamic([line, *axes.spines.values()])  # spines are drawn over the line: redrawn with it
    seen = []
    figure.canvas.mpl_connect("draw_event", seen.append)
    pixels(figure)
    background = figure._background
    if change == "dynamic":
        line.set_ydata([1, 0.2])
        assert not figure.stale
    else:
        axes.lines[0].set_color("C3")
        assert figure.stale
    cached = pixels(figure)
    assert (figure._background is background) == (change == "dynamic")
    assert len(seen) == 2
    reference, reference_axes, reference_line = figure_with_a_line(Figure)
    reference_line.set_ydata(line.get_ydata())
    reference_axes.lines[0].set_color(axes.lines[0].get_color())
    np.testing.assert_array_equal(cached, pixels(reference))
