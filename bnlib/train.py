"""The training loop: SGD over minibatches, accuracy after every epoch, a history that survives Ctrl-C.

Also training for a number of steps (not epochs), stopped early by a callback: what notebook 08's runs need.
"""

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bnlib.checks import check_integer, check_number
from bnlib.config import LEARNING_RATE
from bnlib.runtime import model_device, resolve_device

DIVERGENCE_FACTOR = 10.0  # a loss above 10 x the first step's loss counts as diverged
SGD_SETTINGS = {"momentum": 0.0, "weight_decay": 0.0}  # plain SGD (torch.optim.SGD's defaults), as in the lecture


def sgd(parameters, learning_rate):
    """The lecture's optimizer over `parameters`: plain SGD at `learning_rate` (`sgd_key` describes it)."""
    return torch.optim.SGD(parameters, lr=check_number("learning_rate", learning_rate, 0, None, low_open=True),
                           **SGD_SETTINGS)  # fmt: skip


def sgd_key(learning_rate):
    """The optimizer's part of a cache key, JSON-ready: what `sgd(parameters, learning_rate)` builds."""
    learning_rate = check_number("learning_rate", learning_rate, 0, None, low_open=True)
    return {"name": "SGD", "lr": learning_rate, **SGD_SETTINGS}


@dataclass
class History:
    """What one training run produced; accuracies in percent, one entry per epoch."""

    minibatch_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    valid_acc: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    test_acc: float | None = None
    interrupted: bool = False  # True when Ctrl-C stopped the run early

    def to_dict(self):
        return asdict(self)

    def final_numbers(self):
        """What a table reports of the run: last train and validation accuracy, test accuracy, train - test gap (all
        in %; the test accuracy and gap None for an interrupted run), seconds per epoch and epochs trained."""
        train, test = self.train_acc[-1], self.test_acc
        return {
            "final_train_acc": train,
            "final_valid_acc": self.valid_acc[-1],
            "test_acc": test,
            "train_test_gap": None if test is None else train - test,
            "seconds_per_epoch": sum(self.epoch_seconds) / len(self.epoch_seconds),
            "epochs": len(self.train_acc),
        }


@torch.no_grad()
def compute_accuracy(model, loader, device=None):
    """Accuracy of `model` on every batch of `loader`, in percent (the model's mode is left as it is)."""
    device = model_device(model, device)
    correct = total = 0
    for images, labels in loader:
        logits = model(images.to(device))
        correct += (logits.argmax(dim=1) == labels.to(device)).sum().item()
        total += len(labels)
    return 100.0 * correct / total


def train_step(model, optimizer, images, labels, device):
    """One optimizer step on the minibatch (images, labels), cross-entropy loss, in the model's current mode."""
    loss = F.cross_entropy(model(images.to(device)), labels.to(device))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def train_one_epoch(model, loader, optimizer, device, *, step=0, on_batch=None, history=None):
    """One pass over `loader` in train mode; returns the global step count after it (`step` before it).

    `on_batch(model, step)` runs after every optimizer step; each minibatch loss goes to `history` when given.
    """
    model.train()
    for images, labels in loader:
        loss = train_step(model, optimizer, images, labels, device)
        if history is not None:
            history.minibatch_loss.append(loss.item())
        step += 1
        if on_batch is not None:
            on_batch(model, step)
    return step


def evaluate_epoch(model, train_loader, valid_loader, device, history):
    """Train and validation accuracy in eval mode, appended to the history."""
    model.eval()
    history.train_acc.append(compute_accuracy(model, train_loader, device))
    history.valid_acc.append(compute_accuracy(model, valid_loader, device))


def progress_text(history, logging_interval):
    """The progress bar's fields: mean loss of the last `logging_interval` steps, last train and valid accuracy."""
    recent = history.minibatch_loss[-logging_interval:]
    return {
        "loss": f"{sum(recent) / len(recent):.3f}",
        "train": f"{history.train_acc[-1]:.2f}%",
        "valid": f"{history.valid_acc[-1]:.2f}%",
    }


def train_model(
    model,
    num_epochs,
    train_loader,
    valid_loader,
    test_loader=None,
    *,
    optimizer=None,
    learning_rate=LEARNING_RATE,
    device=None,
    logging_interval=50,
    seed=None,
    progress=True,
    on_batch=None,
    on_epoch=None,
):
    """Train and return a History; the model ends in eval mode. Without `optimizer`: `sgd` at `learning_rate`.

    `seed` seeds torch before the first step (dropout masks); `on_batch(model, step)` runs after
    every optimizer step, `on_epoch(history, num_epochs)` after every epoch's evaluation. Ctrl-C
    stops cleanly and returns the history so far, marked interrupted.
    """
    check_integer("num_epochs", num_epochs, minimum=1)
    check_integer("logging_interval", logging_interval, minimum=1)
    check_number("learning_rate", learning_rate, 0, None, low_open=True)
    device = resolve_device(device)
    model.to(device)
    if optimizer is None:
        optimizer = sgd(model.parameters(), learning_rate)
    if seed is not None:
        torch.manual_seed(seed)
    history, step = History(), 0
    bar = tqdm(range(num_epochs), desc="epochs", disable=not progress)
    try:
        for _ in bar:
            start = time.perf_counter()
            step = train_one_epoch(
                model, train_loader, optimizer, device, step=step, on_batch=on_batch, history=history
            )
            evaluate_epoch(model, train_loader, valid_loader, device, history)
            history.epoch_seconds.append(time.perf_counter() - start)
            bar.set_postfix(progress_text(history, logging_interval))
            if on_epoch is not None:
                on_epoch(history, num_epochs)
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    model.eval()
    if test_loader is not None and not history.interrupted:
        history.test_acc = compute_accuracy(model, test_loader, device)
    return history


class StopTraining(Exception):
    """Raised by an `on_step` callback to end training after the current step (not an error)."""


def has_diverged(loss, first_loss, factor=DIVERGENCE_FACTOR):
    """True when `loss` is not finite or exceeds `factor` times `first_loss` (the first step's loss)."""
    return not math.isfinite(loss) or loss > factor * first_loss


@contextlib.contextmanager
def evaluation_mode(model):
    """Put `model` in eval mode inside the block; every module gets back the mode it had, even after an error.

    Module by module, so a layer left in eval mode by hand inside a training model stays so.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


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
