"""A figure's pictures at every checkpoint, flipped through in the browser: a player for a page without a kernel.

On a static page (`BNLIB_STATIC=1`) no kernel redraws a figure when a slider moves, so the widget carries one PNG
per checkpoint, rendered while the notebook runs, and `frames.js` (an anywidget) shows the last one at or before
its `step`, which a front-end link (jslink) ties to the slider. Imported only there: anywidget may be missing.
"""

import base64
from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

from bnlib.widgets.displays import FigureDisplay


class FramesFigure(anywidget.AnyWidget):
    """`frames` (base64 PNGs), `steps` (the checkpoint of each frame, increasing), `captions` (each frame's text
    alternative) and `step`: the frame shown is the last whose step is at or before it."""

    _esm = Path(__file__).with_name("frames.js")
    frames = traitlets.List(traitlets.Unicode()).tag(sync=True)
    steps = traitlets.List(traitlets.Int()).tag(sync=True)
    captions = traitlets.List(traitlets.Unicode()).tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)


class FramesDisplay(FigureDisplay):
    """A FramesFigure of `figure`'s pictures `pngs` (PNG bytes, one per step of `steps`), its step linked to
    `slider` in the browser (`link`, a jslink); `render()` sends the slider's step, for a kernel that drives it."""

    def __init__(self, figure, slider, steps, pngs, captions):
        super().__init__(figure)
        self.slider = slider
        self.widget = FramesFigure(frames=[base64.b64encode(png).decode("ascii") for png in pngs],
                                   steps=[int(value) for value in steps], captions=list(captions), step=slider.value)
        self.link = widgets.jslink((slider, "value"), (self.widget, "step"))

    def render(self):
        self.widget.step = self.slider.value
