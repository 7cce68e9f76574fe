"""A matplotlib Figure that redraws only a few "dynamic" artists over a cached background on screen draws.

It depends on four matplotlib behaviours, checked by tests/test_cached_figure.py (which fails loudly
if a matplotlib release changes them):
1. `Artist.stale_callback` (undocumented): an artist's `stale = True` calls it to mark its parents,
   up to the figure, stale; setting it to None keeps a dynamic artist's changes from doing that.
2. `Artist.set_animated(True)` (public, the blitting tutorial): a screen draw leaves the artist out
   (a saving draw, `canvas.is_saving()`, still draws it).
3. `DrawEvent(...)._process()` (private): how `Figure.draw` announces "draw_event" to the canvas'
   callbacks when it is done; this figure sends it once per draw, as `Figure.draw` does.
4. The Agg renderer's `copy_from_bbox` / `restore_region` (public, what blitting uses).
"""

from matplotlib.backend_bases import DrawEvent
from matplotlib.figure import Figure


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
            artist.stale_callback = None  # behaviour 1: their changes must not make the figure stale
        self._background = None

    def _cacheable(self, renderer):
        return (
            self.dynamic
            and self.get_visible()
            and not self.canvas.is_saving()
            and hasattr(renderer, "copy_from_bbox")
            and hasattr(renderer, "restore_region")
        )

    def _draw_background(self, renderer):
        """A full draw without the dynamic artists (behaviour 2), kept as the background (behaviour 4)."""
        self._background = None
        try:
            for artist in self.dynamic:
                artist.set_animated(True)
            with self.canvas.callbacks.blocked(signal="draw_event"):  # sent once by draw(), when all is drawn
                super().draw(renderer)
        finally:
            for artist in self.dynamic:
                artist.set_animated(False)
        self._background = renderer.copy_from_bbox(self.bbox)
        self._background_key = (renderer.width, renderer.height, self.dpi)

    def draw(self, renderer):
        if not self._cacheable(renderer):
            self._background = None
            return super().draw(renderer)
        key = (renderer.width, renderer.height, self.dpi)
        if self._background is not None and self._background_key == key and not self.stale:
            renderer.restore_region(self._background)
        else:
            self._draw_background(renderer)
        for artist in self.dynamic:
            if artist.get_visible():
                artist.draw(renderer)
        self.stale = False
        DrawEvent("draw_event", self.canvas, renderer)._process()  # behaviour 3
