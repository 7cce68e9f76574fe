"""Live learning curves: one figure updated in place (a display handle, under either backend), throttled, switchable."""

import io

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient
from PIL import Image

from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.train import History, train_model
from bnlib.widgets import live
from bnlib.widgets.live import LIVE_ENV, LiveCurves, live_curves


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Display:
    """Stands in for IPython's display(): records what was shown and each update of its handle."""

    def __init__(self):
        self.shown, self.updates = [], []

    def __call__(self, obj, display_id=False):
        self.shown.append(obj)
        return self if display_id else None

    def update(self, obj):
        self.updates.append(obj)


@pytest.fixture
def display(monkeypatch):
    fake = Display()
    monkeypatch.setattr("IPython.display.display", fake)
    return fake


@pytest.fixture
def inline_backend():
    before = matplotlib.get_backend()
    matplotlib.use("agg")
    yield
    matplotlib.use(before)


@pytest.fixture
def ipympl_backend():
    before = matplotlib.get_backend()
    matplotlib.use("module://ipympl.backend_nbagg")
    yield
    plt.close("all")
    matplotlib.use(before)


def grow(history, epoch, steps_per_epoch=40):
    """Append one epoch of made-up numbers to `history`, as train_model would."""
    losses = 2.0 / (1 + np.arange(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch) / steps_per_epoch)
    history.minibatch_loss.extend(losses.tolist())
    history.train_acc.append(80.0 + epoch)
    history.valid_acc.append(79.0 + epoch / 2)
    return history


def check_plotted(curves, history):
    """The figure's lines hold the history: accuracies exactly, the loss (thinned) at its own values."""
    epochs = np.arange(1, len(history.train_acc) + 1)
    np.testing.assert_array_equal(curves.train.get_xdata(), epochs)
    np.testing.assert_array_equal(curves.train.get_ydata(), history.train_acc)
    np.testing.assert_array_equal(curves.valid.get_ydata(), history.valid_acc)
    x, losses = curves.loss.get_xdata(), curves.loss.get_ydata()
    assert x[-1] <= len(epochs) and len(losses) <= live.MAX_LOSS_POINTS
    assert set(losses) <= set(history.minibatch_loss) and losses[0] == history.minibatch_loss[0]


def png_pixels(image):
    return np.asarray(Image.open(io.BytesIO(image.data)))


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_off_with_the_variable(monkeypatch, value):
    monkeypatch.setattr("IPython.get_ipython", lambda: object())  # even inside IPython
    monkeypatch.setenv(LIVE_ENV, value)
    assert live_curves("run") is None


def test_on_inside_ipython_and_off_outside(monkeypatch):
    monkeypatch.delenv(LIVE_ENV, raising=False)
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    assert live_curves() is None  # a script: nobody watches
    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    curves = live_curves("BN model")
    assert isinstance(curves, LiveCurves) and curves.title == "BN model" and curves.figure is None


def test_inline_one_output_updated_in_place(display, inline_backend):
    clock, history = Clock(), History()
    curves = LiveCurves("run", interval=2.0, clock=clock)
    figures_before = plt.get_fignums()
    for epoch in range(5):
        clock.now = 3.0 * epoch  # every call is due
        curves(grow(history, epoch), 5)
        check_plotted(curves, history)
    assert curves.draws == 5 and len(display.shown) == 1 and len(display.updates) == 4
    assert plt.get_fignums() == figures_before  # not a pyplot figure: the inline backend shows nothing twice
    first, last = png_pixels(display.shown[0]), png_pixels(display.updates[-1])
    assert first.shape == last.shape and not np.array_equal(first, last)
    assert "epoch 5 of 5" in curves.figure.get_suptitle() and "81.00 %" in curves.figure.get_suptitle()


def test_throttled_to_the_interval_and_the_last_epoch_always_drawn(display, inline_backend):
    clock, history = Clock(), History()
    curves = LiveCurves(interval=2.0, clock=clock)
    drawn = []
    for epoch, now in enumerate([0.0, 0.5, 1.9, 2.0, 3.0, 3.5]):
        clock.now = now
        curves(grow(history, epoch), 6)
        drawn.append(curves.draws)
    # drawn at 0 (first), 2.0 (2 s after), 3.5 (the last epoch, although only 1.5 s later)
    assert drawn == [1, 1, 1, 2, 2, 3]
    assert len(display.shown) + len(display.updates) == 3
    check_plotted(curves, history)  # the skipped epochs are in the figure once it is drawn


def test_nothing_shown_before_the_first_epoch(display, inline_backend):
    curves = LiveCurves()
    assert curves.figure is None and display.shown == []


def test_under_ipympl_too_one_image_output_not_a_canvas(display, ipympl_backend):
    """An ipympl canvas shows nothing while the kernel trains, so the curves are PNG updates there too."""
    clock, history = Clock(), History()
    curves = LiveCurves(interval=2.0, clock=clock)
    figures_before = plt.get_fignums()
    for epoch in range(3):
        clock.now = 2.0 * epoch
        curves(grow(history, epoch), 3)
        check_plotted(curves, history)
    assert plt.get_fignums() == figures_before  # no pyplot figure, so no ipympl canvas widget
    assert len(display.shown) == 1 and len(display.updates) == 2 and curves.draws == 3
    assert all(png_pixels(image).ndim == 3 for image in display.shown + display.updates)


def test_watching_changes_no_number(display, inline_backend):
    """The same seeded run with and without live curves: the same history, bit for bit."""
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(128, 20, generator=generator), torch.randint(0, 3, (128,), generator=generator)
    histories = []
    for on_epoch in (None, LiveCurves(interval=0)):
        loader = TensorLoader(images, labels, 32, shuffle=True, seed=1)
        torch.manual_seed(2)
        model = make_mlp((8,), in_features=20, num_classes=3, bn="before", dropout=0.2)
        histories.append(train_model(model, 3, loader, loader, progress=False, device="cpu", seed=3,
                                     on_epoch=on_epoch))
    without, with_curves = (history.to_dict() for history in histories)
    without.pop("epoch_seconds"), with_curves.pop("epoch_seconds")
    assert with_curves == without and len(display.shown) + len(display.updates) == 3


@pytest.mark.slow  # a notebook kernel
def test_in_a_notebook_kernel_under_both_backends(tmp_path):
    """A real kernel trains a small model with live curves: one image output, updated, under either backend."""
    train = (
        "history = train_model(make_mlp((8,), in_features=20, num_classes=3, bn='before'), 3, loader, loader,\n"
        "                      progress=False, device='cpu', on_epoch=curves)\n"
        "print(curves.draws, list(curves.train.get_ydata()) == history.train_acc)"
    )
    cells = [
        "import os, torch\nos.environ.pop('BNLIB_LIVE', None)\n"
        "from bnlib.data import TensorLoader\nfrom bnlib.models import make_mlp\nfrom bnlib.train import train_model\n"
        "from bnlib.widgets.live import LiveCurves, live_curves\n"
        "loader = TensorLoader(torch.randn(64, 20), torch.randint(0, 3, (64,)), 16)",
        "%matplotlib inline\ncurves = live_curves('inline')\ncurves.interval = 0  # every epoch\n" + train,
        "%matplotlib widget\ncurves = live_curves('ipympl')\ncurves.interval = 0\n" + train,
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()
    for cell in notebook.cells[1:]:
        shown = [output for output in cell.outputs if output.output_type == "display_data"]
        printed = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
        assert len(shown) == 1 and "image/png" in shown[0]["data"], cell.outputs
        assert printed.split() == ["3", "True"], printed
