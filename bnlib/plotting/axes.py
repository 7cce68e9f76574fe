"""Where a plot helper draws: the Axes or Figure it is given, else a new one; the one rule for every helper.

One-panel helpers take `ax=None` and return the Axes; helpers of several panels take `figure=None` (a
Figure, or a SubFigure of a larger one) and return it. New figures come from pyplot, so that a notebook
shows them when the cell ends, with the constrained layout, so that labels never overlap.
"""

import matplotlib.pyplot as plt


def default_figure(figure=None, figsize=(6, 4)):
    """`figure` (a Figure or SubFigure to draw into) when given, else a new constrained-layout Figure of `figsize`."""
    return figure if figure is not None else plt.figure(figsize=figsize, layout="constrained")


def default_axes(ax=None, figsize=(6, 4)):
    """`ax` when given, else the one Axes of a new `default_figure` of `figsize`."""
    return ax if ax is not None else default_figure(figsize=figsize).add_subplot()
