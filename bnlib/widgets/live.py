"""Live learning curves while a notebook trains for real: one figure, redrawn in place, at most every 2 s.

`live_curves()` returns an `on_epoch(history, num_epochs)` callback for `train_model` (which imports no
plotting library). The figure is a PNG in one display output that each redraw replaces (an IPython display
handle), under the inline backend and under ipympl alike: an ipympl canvas cannot show anything while the
kernel is busy training (its view needs replies from the kernel to start), a display update can. Nothing is
shown until the first epoch ends, so a run that the cache answers shows no empty figure.
"""

import io
import time

import numpy as np
from matplotlib.figure import Figure

from bnlib.config import env_flag

LIVE_ENV = "BNLIB_LIVE"  # "0" turns live curves off (tests, `make run`, `make warm`, `make bench` set it)
REDRAW_INTERVAL_S = 2.0  # the class sees the curves grow; drawing more often would slow training
MAX_LOSS_POINTS = 2000  # minibatch losses drawn (a 50-epoch run has ~10,000); thinned with an even stride


def live_enabled():
    """False when `BNLIB_LIVE` is 0/false/no, or outside IPython, where nobody watches a figure."""
    if not env_flag(LIVE_ENV, default=True):
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def live_curves(title=None):
    """An `on_epoch(history, num_epochs)` callback that draws the learning curves live; None when switched off."""
    return LiveCurves(title) if live_enabled() else None


class LiveCurves:
    """The callback: training loss (left) and train/validation accuracy (right) against epochs, one figure.

    `figure`, `draws` (redraws so far) and `handle` (the display handle) are exposed for tests; `interval` and
    `clock` set the throttle.
    """

    def __init__(self, title=None, *, interval=REDRAW_INTERVAL_S, clock=time.monotonic):
        self.title, self.interval, self.clock = title, interval, clock
        self.figure = self.handle = None
        self.draws, self._last_draw = 0, None

    def __call__(self, history, num_epochs):
        epochs = len(history.train_acc)
        due = self._last_draw is None or self.clock() - self._last_draw >= self.interval
        if not (due or epochs >= num_epochs):  # the last epoch is always drawn
            return
        if self.figure is None:
            self._create(num_epochs)
        self._set_data(history, num_epochs)
        self._show()
        self.draws += 1
        self._last_draw = self.clock()

    def _create(self, num_epochs):
        self.figure = Figure(figsize=(9, 3.2), dpi=80)  # not pyplot's: no backend shows it a second time
        self.figure.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.16, wspace=0.22)
        loss_axes, accuracy_axes = self.figure.subplots(1, 2)
        (self.loss,) = loss_axes.plot([], [], color="C0", linewidth=0.6, label="minibatch loss")
        (self.train,) = accuracy_axes.plot([], [], "o-", color="C0", markersize=3, label="train")
        (self.valid,) = accuracy_axes.plot([], [], "o-", color="C1", markersize=3, label="validation")
        loss_axes.set(xlabel="epoch", ylabel="training loss", xlim=(0, num_epochs))
        accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", xlim=(0, num_epochs + 0.5))
        accuracy_axes.legend(loc="lower right", fontsize="small")
        self.axes = (loss_axes, accuracy_axes)

    def _set_data(self, history, num_epochs):
        losses, epochs = np.asarray(history.minibatch_loss), len(history.train_acc)
        steps = np.arange(0, len(losses), max(1, -(-len(losses) // MAX_LOSS_POINTS)))
        self.loss.set_data((steps + 1) * epochs / len(losses), losses[steps])  # x in epochs
        self.train.set_data(np.arange(1, epochs + 1), history.train_acc)
        self.valid.set_data(np.arange(1, epochs + 1), history.valid_acc)
        for axes in self.axes:
            axes.relim()
            axes.autoscale_view(scalex=False)
        name = f"{self.title}: " if self.title else ""
        self.figure.suptitle(f"{name}epoch {epochs} of {num_epochs}, validation accuracy {history.valid_acc[-1]:.2f} %")

    def _show(self):
        from IPython.display import Image, display

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        image = Image(data=buffer.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
