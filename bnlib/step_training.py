"""Training for a number of SGD steps (not epochs), stopped early by a callback: what notebook 08's runs need.

It reuses `train.train_one_epoch` for the steps themselves and stops it from inside its callback.
"""

import contextlib
import math

from bnlib.checks import check_integer
from bnlib.train import History, train_one_epoch

DIVERGENCE_FACTOR = 10.0  # a loss above 10 x the first step's loss counts as diverged


class StopTraining(Exception):
    """Raised by an `on_step` callback to end training after the current step (not an error)."""


def has_diverged(loss, first_loss, factor=DIVERGENCE_FACTOR):
    """True when `loss` is not finite or exceeds `factor` times `first_loss` (the first step's loss)."""
    return not math.isfinite(loss) or loss > factor * first_loss


@contextlib.contextmanager
def evaluation_mode(model):
    """Put `model` in eval mode inside the block and back in the mode it had, even after an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def train_steps(model, loader, optimizer, num_steps, *, device, on_step=None):
    """Train `model` for `num_steps` SGD steps, epoch after epoch of `loader`; returns the History (losses).

    `on_step(model, step, loss)` runs after every step (step counts from 1) and may raise
    StopTraining to end early; `len(history.minibatch_loss)` is then the number of steps taken.
    """
    check_integer("num_steps", num_steps, minimum=1)
    history = History()

    def after_step(model, step):
        if on_step is not None:
            on_step(model, step, history.minibatch_loss[-1])
        if step == num_steps:
            raise StopTraining

    step = 0
    with contextlib.suppress(StopTraining):
        while True:
            step = train_one_epoch(model, loader, optimizer, device, step=step, on_batch=after_step, history=history)
    return history


class DivergenceCheck:
    """An `on_step` callback that stops training once the loss diverges; `diverged_at` is that step, else None."""

    def __init__(self, factor=DIVERGENCE_FACTOR):
        self.factor = factor
        self.first_loss = None
        self.diverged_at = None

    def __call__(self, model, step, loss):
        if self.first_loss is None:
            self.first_loss = loss
        if has_diverged(loss, self.first_loss, self.factor):
            self.diverged_at = step
            raise StopTraining
