"""Ioffe & Szegedy (2015), Figure 1: a sigmoid MLP on MNIST with and without BatchNorm, and the input to one
sigmoid of the last hidden layer followed through training.

What the paper gives (section 4.1): 28×28 binary images, three fully connected hidden layers of
100 sigmoid units, weights initialized to "small random Gaussian values", a 10-way output layer
with cross-entropy, minibatches of 60, 50,000 steps; BatchNorm in each hidden layer, before the
sigmoid. It gives no weight scale, no bias initialization, no optimizer and no learning rate:
our choices are weights from N(0, 0.01²), zero biases, plain SGD at learning rate 0.5, and
greyscale images in [0, 1] (not binarized). Every `track_every` steps the same validation images
go through the network as training sees them (BatchNorm normalizes with their own batch
statistics), and the inputs of one sigmoid are kept.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bnlib.checks import check_integer
from bnlib.data import TensorLoader, training_loader
from bnlib.models import mlp_arguments
from bnlib.runs import ModelSpec, cached_run, describe_run, mlp_spec, run_key, stored_tensors
from bnlib.runtime import resolve_device
from bnlib.studies.noisy_batchnorm import make_noisy_mlp, noise_replayed
from bnlib.train import compute_accuracy, evaluation_mode, sgd, train_steps

PAPER_NETWORK = {"hidden": (100, 100, 100), "activation": "sigmoid"}  # what the paper's section 4.1 gives
OUR_INITIALIZATION = {"init_std": 0.01, "zero_bias": True}  # ours: the paper says "small random Gaussian values"
PAPER_BATCH_SIZE = 60
LEARNING_RATE = 0.5  # ours, with plain SGD: the paper names no optimizer or learning rate for this experiment
PAPER_STEPS = 50_000
PERCENTILES = (15, 50, 85)  # the three lines of the paper's Figure 1(b, c)
SPREAD = (15, 85)  # the percentiles whose distance is the distribution's spread, to compare movements on one scale
SMOOTHING_WINDOW = 5  # accuracy measurements averaged by `smoothed_crossing`
PROCEDURE = "Ioffe & Szegedy 2015 Figure 1: SGD steps, one last-layer sigmoid input tracked"
TRACKING = "train-mode batch statistics, running statistics untouched, the next step's noise"


def paper_model_options(bn):
    """`make_mlp` options of the paper's network with our initialization, BatchNorm before each sigmoid when `bn`."""
    return {**PAPER_NETWORK, **OUR_INITIALIZATION, "bn": "before" if bn else None}


def paper_model(bn, noise=None, seed=0):
    """The ModelSpec of the Figure 1 network (`paper_model_options`); `noise` (a NoiseDistribution or None) after
    each BatchNorm, its layers seeded from `seed`."""
    options = paper_model_options(bn)
    if noise is None:
        return mlp_spec(options)
    return ModelSpec(make_noisy_mlp, {"noise": noise.to_dict(), "noise_seed": seed, **mlp_arguments(**options)})


def sigmoid_inputs(model, images, layer=-1):
    """Inputs (N, units) of the `layer`-th nn.Sigmoid of `model` (default: the last), as train mode computes them.

    BatchNorm layers normalize with the batch statistics of `images`, exactly as in a training step,
    but their running statistics are left untouched (no buffer is read or written).
    """
    positions = [index for index, module in enumerate(model) if isinstance(module, nn.Sigmoid)]
    if not positions:
        raise ValueError("model has no nn.Sigmoid layer")
    stop = positions[layer]
    outputs = images
    with torch.no_grad():
        for module in model[:stop]:
            outputs = batch_normalize(module, outputs) if isinstance(module, nn.BatchNorm1d) else module(outputs)
    return outputs


def batch_normalize(layer, inputs):
    """What `layer` (a BatchNorm1d) computes in train mode, without updating its running statistics."""
    return F.batch_norm(inputs, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)


def unit_percentiles(unit_inputs, percentiles=PERCENTILES):
    """(checkpoints, len(percentiles)) percentiles of each row of `unit_inputs` (checkpoints, images)."""
    return np.percentile(np.asarray(unit_inputs), percentiles, axis=1).T


def percentile_movement(steps, unit_inputs, after_step, percentiles=PERCENTILES):
    """How far each percentile moved after `after_step`: max - min over the checkpoints from there on, (P,)."""
    later = unit_percentiles(unit_inputs, percentiles)[np.asarray(steps) >= after_step]
    return later.max(axis=0) - later.min(axis=0)


def largest_movement(run, after_step):
    """The largest percentile range (max - min) of a `tracked_run`'s input over the checkpoints after `after_step`."""
    return percentile_movement(run.record["tracked_steps"], run.tensors["unit_inputs"], after_step).max()


def typical_spread(run, after_step, spread=SPREAD):
    """The median, over a `tracked_run`'s checkpoints after `after_step`, of the distance between the `spread`
    percentiles (15th to 85th) of its input: the width of the input's distribution, in the input's own units."""
    widths = unit_percentiles(run.tensors["unit_inputs"], spread)[np.asarray(run.record["tracked_steps"]) >= after_step]
    return float(np.median(widths[:, 1] - widths[:, 0]))


def relative_movement(run, after_step, spread=SPREAD):
    """`largest_movement` divided by `typical_spread`: how far the input moved, in widths of its own distribution,
    so that inputs on different scales compare on one."""
    return largest_movement(run, after_step) / typical_spread(run, after_step, spread)


def smoothed_crossing(record, accuracy, window=SMOOTHING_WINDOW):
    """The first measured step at which the mean of the last `window` test accuracies of `record` (from
    `train_and_track`) reaches `accuracy` percent, or None: how fast a network trains, where a single lucky
    measurement of a jumpy curve does not count as reaching it."""
    check_integer("window", window, minimum=1)
    values = np.asarray(record["test_accuracy"], dtype=float)
    if len(values) < window:
        return None
    means = np.convolve(values, np.ones(window) / window, mode="valid")  # means[i]: measurements i .. i + window - 1
    reached = np.flatnonzero(means >= accuracy)
    return int(record["accuracy_steps"][reached[0] + window - 1]) if len(reached) else None


def mean_accuracy(record):
    """The area under the test-accuracy curve of `record` (trapezoids between measured steps) divided by the steps
    it spans: the accuracy averaged over training, in percent. Higher means faster, better or both."""
    steps, values = np.asarray(record["accuracy_steps"], dtype=float), np.asarray(record["test_accuracy"], dtype=float)
    if len(steps) == 1:
        return float(values[0])
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))


def final_training_loss(record, last_steps):
    """The mean minibatch loss of `record` over its last `last_steps` training steps (with any noise the network
    trained with: the network that was trained, not an eval-mode copy)."""
    return float(np.mean(record["minibatch_loss"][-check_integer("last_steps", last_steps, minimum=1):]))


def train_and_track(model, data, *, num_steps, batch_size, learning_rate, seed, track_every, num_tracked, unit,
                    accuracy_every, device):
    """Train `model` with SGD and follow one sigmoid input; returns (record, {"unit_inputs": (checkpoints, images)}).

    The unit is `unit` of the last hidden layer, measured at step 0 and every `track_every` steps on
    the first `num_tracked` validation images; test accuracy (eval mode) at step 0, every
    `accuracy_every` steps and at the end.
    """
    model.to(device)
    loader = training_loader(data.train, batch_size, seed, device)
    test_loader = TensorLoader(*data.test, 2_000, device=device)
    tracked = data.split("valid", num_tracked)[0].to(device)
    steps, unit_inputs, accuracy_steps, accuracies = [], [], [], []

    def measure(model, step, loss=None):
        if step % track_every == 0:
            steps.append(step)
            with noise_replayed(model):  # noisy BatchNorm: the noise of the next step, which stays unchanged
                unit_inputs.append(sigmoid_inputs(model, tracked)[:, unit].cpu())
        if step % accuracy_every == 0 or step == num_steps:
            with evaluation_mode(model):
                accuracy_steps.append(step)
                accuracies.append(compute_accuracy(model, test_loader, device))

    model.train()
    measure(model, 0)
    optimizer = sgd(model.parameters(), learning_rate)
    history = train_steps(model, loader, optimizer, num_steps, device=device, on_step=measure)
    record = {
        "tracked_steps": steps,
        "accuracy_steps": accuracy_steps,
        "test_accuracy": accuracies,
        "final_test_accuracy": accuracies[-1],
        "minibatch_loss": history.minibatch_loss,
    }
    return record, stored_tensors(model, {"unit_inputs": torch.stack(unit_inputs)})


def tracked_run(bn, data, *, num_steps, seed, noise=None, batch_size=PAPER_BATCH_SIZE,
                learning_rate=LEARNING_RATE, track_every=50, num_tracked=1_000, unit=0, accuracy_every=500,
                device=None, cache_dir=None, verbose=True):  # fmt: skip
    """The Figure 1 network (`paper_model_options`; `bn`: BatchNorm before each sigmoid; `noise`: a
    NoiseDistribution after each BatchNorm, or None) trained and tracked: a CachedRun, from the cache or trained."""
    check_integer("num_steps", num_steps, minimum=1)
    if noise is not None and not bn:
        raise ValueError("noise goes after each BatchNorm: it needs bn=True")
    device = resolve_device(device)
    model = paper_model(bn, noise, seed)
    sizes = {"num_steps": num_steps, "batch_size": batch_size, "seed": seed,
             "track_every": check_integer("track_every", track_every, minimum=1),
             "num_tracked": check_integer("num_tracked", num_tracked, minimum=2),
             "unit": check_integer("unit", unit, minimum=0),
             "accuracy_every": check_integer("accuracy_every", accuracy_every, minimum=1)}  # fmt: skip
    key = run_key(PROCEDURE, model, learning_rate, tracking=TRACKING, **sizes)

    def compute():
        return train_and_track(model.build(seed), data, learning_rate=learning_rate, device=device, **sizes)

    return cached_run(key, model, compute, data=data, device=device, cache_dir=cache_dir, verbose=verbose,
                      description=describe_run(model, f"{num_steps:,} steps", f"seed {seed}"))  # fmt: skip
