"""Latency of the momentum explorer: set its momentum slider, let it update, draw the figure; in ms.

Timed twice on one recording: with ipympl's widget canvas (the lecture's set-up) and with the image
fallback used where ipympl is missing (the figure re-rendered as a PNG into an ipywidgets.Image).
"""

import time

import numpy as np

from bnlib.config import BATCH_SIZE, SEED
from bnlib.data import TensorLoader, lecture_loaders, load_mnist
from bnlib.models import make_mlp
from bnlib.runtime import seed_everything
from bnlib.train import train_model

WARM_UP_UPDATES = 3  # the first draws fill matplotlib's text and path caches


def use_backend(name):
    """Draw through `name` ("module://ipympl.backend_nbagg" or "Agg"); False when it cannot be loaded."""
    import matplotlib.pyplot as plt

    try:
        plt.switch_backend(name)
    except ImportError:
        return False
    return True


def record_run(num_epochs, batch_size=BATCH_SIZE, seed=SEED, device=None):
    """(recorder, loaders): the lecture's BN model trained `num_epochs` as in notebook 04, batch statistics recorded."""
    from bnlib.stats.recording import BatchStatsRecorder, checkpoint_steps

    train, valid, test = lecture_loaders(load_mnist(), batch_size, seed, device)
    population = TensorLoader(*load_mnist().train, 10_000, device=device)  # the whole training split
    seed_everything(seed)
    model = make_mlp(bn="before")
    keep = checkpoint_steps(len(train), num_epochs)
    with BatchStatsRecorder(model, keep_weights_at=keep) as recorder:
        train_model(model, num_epochs, train, valid, on_batch=recorder, device=device, seed=seed, progress=False)
    return recorder, {"train": train, "test": test, "population": population}


def slider_values(count, low_exponent=-3, high_exponent=0, step=0.01):
    """`count` momentum values a drag across the log slider passes, up then down, each on its 0.01-exponent grid.

    Consecutive values differ, so every update replays and evaluates a momentum it has not seen.
    """
    grid = np.round(np.arange(low_exponent, high_exponent + step / 2, step), 2)
    up = grid[np.unique(np.linspace(0, len(grid) - 1, (count + 1) // 2 + 1).round().astype(int))]
    exponents = np.concatenate([up, up[-2::-1]])[:count]
    return [float(10**exponent) for exponent in exponents]


def time_updates(explorer, values):
    """Milliseconds per update: set `explorer.momentum.value`, which redraws, then draw the canvas to pixels."""
    canvas = explorer.figure.canvas
    canvas_is_widget = explorer.display.widget is canvas  # ipympl's canvas display, not the image
    if hasattr(canvas, "syncing_data_url"):
        # Without a front end ipympl also PNG-encodes every frame into a data URL for saved notebooks; a
        # connected JupyterLab turns that off (its 'initialized' message), so the lecture does not pay for it.
        canvas.syncing_data_url = False
    timings = []
    for value in values:
        start = time.perf_counter()
        explorer.momentum.value = value
        if canvas_is_widget:  # ipympl only schedules the draw (draw_idle); force it, as the front end would
            canvas.draw()
        timings.append(1000 * (time.perf_counter() - start))
        if explorer.last_error is not None:
            raise RuntimeError(f"the explorer failed to update: {explorer.last_error!r}")
    return timings


def time_explorer(recorder, loaders, values, device=None):
    """(milliseconds per update after the warm-up, seconds to build the explorer) for the current backend."""
    from bnlib.widgets.explorer import momentum_explorer

    start = time.perf_counter()
    explorer = momentum_explorer(recorder, loaders["test"], loaders["population"], in_browser=False,
                                 steps_per_epoch=len(loaders["train"]), device=device)
    setup_s = time.perf_counter() - start
    return time_updates(explorer, values)[WARM_UP_UPDATES:], setup_s


def time_slider(num_epochs=50, updates=60, device=None, log=print):
    """{slider_ms_median, slider_ms_p95, slider_fallback_ms_median, ...} of `updates` moves on a `num_epochs` run."""
    start = time.perf_counter()
    recorder, loaders = record_run(num_epochs, device=device)
    recording_s = time.perf_counter() - start
    log(f"  recorded {recorder.steps} steps ({num_epochs} epochs) in {recording_s:.1f} s; building the explorers ...")
    values = slider_values(updates + WARM_UP_UPDATES)
    ipympl = use_backend("module://ipympl.backend_nbagg")
    timings, setup_s = time_explorer(recorder, loaders, values, device)
    use_backend("Agg")
    fallback, fallback_setup_s = time_explorer(recorder, loaders, values, device)
    return {
        "slider_ms_median": float(np.median(timings)),
        "slider_ms_p95": float(np.percentile(timings, 95)),
        "slider_fallback_ms_median": float(np.median(fallback)),
        "slider_fallback_ms_p95": float(np.percentile(fallback, 95)),
        "slider": {
            "backend": "ipympl" if ipympl else "Agg, PNG re-rendered (ipympl not installed)",
            "epochs": num_epochs,
            "steps": recorder.steps,
            "updates": len(timings),
            "recording_s": recording_s,
            "explorer_setup_s": setup_s,
            "ms": timings,
            "fallback_explorer_setup_s": fallback_setup_s,
            "fallback_ms": fallback,
        },
    }
