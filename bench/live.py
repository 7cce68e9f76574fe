"""Cost of the live learning curves: the lecture's 50-epoch run with `LiveCurves` beside the same run without."""

import contextlib
import io
import time

import matplotlib
import numpy as np

from bnlib.config import BATCH_SIZE, SEED
from bnlib.data import lecture_loaders, load_mnist
from bnlib.models import make_mlp
from bnlib.runtime import seed_everything
from bnlib.train import train_model
from bnlib.widgets.live import LiveCurves


class TimedCallback:
    """Wraps an on_epoch callback and adds up the seconds spent inside it."""

    def __init__(self, callback):
        self.callback, self.seconds = callback, 0.0

    def __call__(self, history, num_epochs):
        start = time.perf_counter()
        self.callback(history, num_epochs)
        self.seconds += time.perf_counter() - start


def timed_run(num_epochs, loaders, device, with_curves, seed=SEED):
    """(wall seconds of train_model, seconds inside the live-curves callback or 0) for one seeded run."""
    seed_everything(seed)
    model = make_mlp(bn="before")
    callback = TimedCallback(LiveCurves("bench")) if with_curves else None
    start = time.perf_counter()
    train_model(model, num_epochs, *loaders, device=device, seed=seed, progress=False, on_epoch=callback)
    return time.perf_counter() - start, callback.seconds if callback else 0.0


@contextlib.contextmanager
def inline_display():
    """An IPython shell, so the curves publish through a real display handle; its text echo goes nowhere."""
    from IPython.core.interactiveshell import InteractiveShell

    backend = matplotlib.get_backend()
    matplotlib.use("agg")  # the inline path: a PNG per redraw, the dearer of the two (ipympl sends a diff)
    InteractiveShell.instance()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        matplotlib.use(backend)


def time_live_curves(num_epochs=50, pairs=2, device=None, log=print):
    """{live_curves_overhead_pct, live_curves: {...}}: median over `pairs` of (with - without) / without, in %.

    The two runs of a pair go back to back, in alternating order; the seconds spent inside the callback
    are reported beside the wall-clock difference, which a shared machine's noise can blur.
    """
    loaders = lecture_loaders(load_mnist(), BATCH_SIZE, SEED, device)[:2]
    rows = []
    with inline_display():
        for pair in range(pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            times = {with_curves: timed_run(num_epochs, loaders, device, with_curves) for with_curves in order}
            (without_s, _), (with_s, inside_s) = times[False], times[True]
            rows.append({"without_s": without_s, "with_s": with_s, "callback_s": inside_s})
            log(f"  live curves, pair {pair + 1}: {without_s:.1f} s without, {with_s:.1f} s with "
                f"({inside_s:.2f} s inside the callback)")
    overhead = [100 * (row["with_s"] - row["without_s"]) / row["without_s"] for row in rows]
    inside = [100 * row["callback_s"] / row["without_s"] for row in rows]
    return {
        "live_curves_overhead_pct": float(np.median(overhead)),
        "live_curves": {"epochs": num_epochs, "backend": "inline (PNG through a display handle)",
                        "callback_pct": float(np.median(inside)), "runs": rows},
    }
