"""BatchNorm's running statistics: record them during training, replay them for any momentum, and do without them.

PyTorch's rule, applied by every BatchNorm layer after each forward pass in train mode:

    running = (1 - momentum) * running + momentum * batch

with `momentum=0.1` by default, so the newest batch gets weight 0.1. `momentum=None` makes it a
cumulative average (the factor is 1 / num_batches_tracked). `running_mean` takes the batch mean;
`running_var` takes the unbiased batch variance (divided by n - 1), although train mode normalizes
with the biased one (divided by n). Keras writes the same rule with `momentum=0.99` weighting the
old value. Running statistics never feed back into training, so one recording of the per-batch
statistics reproduces the buffers of a run with any momentum (`replay_running_stats`).
"""

import copy
import math
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from bnlib.train import compute_accuracy

BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@dataclass(frozen=True)
class LayerRecording:
    """Per-batch statistics one BatchNorm layer saw in train mode, one row per training step."""

    mean: torch.Tensor  # (steps, units) batch means, float64
    var: torch.Tensor  # (steps, units) unbiased batch variances, float64 (what running_var takes)
    batch_size: torch.Tensor  # (steps,) values per unit in each batch (N, or N * L for 3-d input)


@dataclass(frozen=True)
class PopulationStats:
    """Whole-data-set statistics of one BatchNorm layer's input, each of shape (units,), float64."""

    mean: torch.Tensor
    var: torch.Tensor  # unbiased, the convention of running_var
    var_biased: torch.Tensor
    count: int  # values per unit the statistics are over


def batchnorm_layers(model):
    """(name, module) for every BatchNorm layer of `model`, in module order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, BATCHNORM_TYPES)]


def _unit_view(inputs):
    """(N, C), (N, C, L) or (N, C, H, W) -> (values, C): one column per unit, as BatchNorm reduces them."""
    return inputs.transpose(0, 1).reshape(inputs.shape[1], -1).T


def checkpoint_steps(steps_per_epoch, num_epochs, early=(1, 2, 5, 10, 20, 50, 100)):
    """Sorted steps worth keeping weights at: 0 (before training), the `early` ones, and the end of every epoch."""
    total = steps_per_epoch * num_epochs
    epoch_ends = range(steps_per_epoch, total + 1, steps_per_epoch)
    return sorted({0, *(step for step in early if 0 < step < total), *epoch_ends})


class BatchStatsRecorder:
    """Records what every BatchNorm layer of `model` sees in train mode, while used as a context manager.

    For each train-mode forward pass it appends, per layer, the batch mean, the unbiased batch
    variance and the batch size (eval-mode passes are skipped); `recording` maps each layer's name
    to a LayerRecording of (steps, units) tensors. Called as `recorder(model, step)` (the `on_batch`
    of `train_model`, or by hand after `optimizer.step()`), it keeps a copy of the model's
    state_dict at the steps in `keep_weights_at`; step 0 is copied on entering.
    """

    def __init__(self, model, keep_weights_at=()):
        self.model = model
        self.layers = batchnorm_layers(model)
        if not self.layers:
            raise ValueError("model has no BatchNorm layer to record")
        self.keep_weights_at = frozenset(int(step) for step in keep_weights_at)
        self.weights = {}  # step -> state_dict copy on the CPU
        self._rows = {name: [] for name, _ in self.layers}
        self._handles = []
        self._stacked = None

    def __enter__(self):
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._hook(name)))
        if 0 in self.keep_weights_at and 0 not in self.weights:
            self.keep_weights(0)
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return False

    def _hook(self, name):
        def record(module, inputs, output):
            if not module.training:
                return
            values = _unit_view(inputs[0].detach()).double()  # (values, C)
            self._rows[name].append((values.mean(0).cpu(), values.var(0, unbiased=True).cpu(), len(values)))
            self._stacked = None

        return record

    def __call__(self, model, step):
        """The `on_batch(model, step)` callback: keep the weights when `step` is one of `keep_weights_at`."""
        if step in self.keep_weights_at:
            self.keep_weights(step)

    def keep_weights(self, step):
        """Keep a CPU copy of the model's state_dict (parameters and BatchNorm buffers) as of `step`."""
        self.weights[step] = {key: value.detach().cpu().clone() for key, value in self.model.state_dict().items()}

    @property
    def steps(self):
        """Number of train-mode forward passes recorded so far."""
        return len(next(iter(self._rows.values())))

    @property
    def recording(self):
        """{layer name: LayerRecording} with (steps, units) tensors of batch means and unbiased variances."""
        if self._stacked is None:
            self._stacked = {name: _stack(rows) for name, rows in self._rows.items()}
        return self._stacked

    def nearest_kept_step(self, step):
        """The kept step closest to `step` (the earlier one on a tie)."""
        if not self.weights:
            raise ValueError("no weights were kept; pass keep_weights_at=... to BatchStatsRecorder")
        return min(self.weights, key=lambda kept: (abs(kept - step), kept))

    def model_at(self, step):
        """A copy of the model with the weights (and buffers) kept at `step`."""
        if step not in self.weights:
            raise ValueError(f"no weights kept at step {step}; kept steps are {sorted(self.weights)}")
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.weights[step])
        return model


def _stack(rows):
    if not rows:
        return LayerRecording(
            torch.empty(0, 0, dtype=torch.float64),
            torch.empty(0, 0, dtype=torch.float64),
            torch.empty(0, dtype=torch.long),
        )
    means, variances, sizes = zip(*rows, strict=True)
    return LayerRecording(torch.stack(means), torch.stack(variances), torch.tensor(sizes))


def _check_momentum(momentum):
    if momentum is None:
        return
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
        raise ValueError(f"momentum must be a number in (0, 1] or None (cumulative average), got {momentum!r}")


def _as_float64(values):
    """A float64 numpy array of shape (steps, units) from a tensor or array of shape (steps,) or (steps, units)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def replay_running_average(batch_values, momentum, init=0.0):
    """One running buffer's trajectory, a float64 array of shape (steps + 1, units) (or (steps + 1,)), row 0 `init`.

    `batch_values` (steps, units) or (steps,) are what the layer fed into the buffer at each step.
    """
    _check_momentum(momentum)
    batch = _as_float64(batch_values)
    init = np.broadcast_to(np.asarray(init, dtype=np.float64), batch.shape[1:])
    if momentum is None:  # PyTorch's factor 1 / num_batches_tracked gives the mean of the batches so far
        running = np.cumsum(batch, axis=0) / np.arange(1, len(batch) + 1)[:, None]
    else:  # y[t] = momentum * x[t] + (1 - momentum) * y[t - 1], a first-order IIR filter with y[0] = init
        decay = 1.0 - momentum
        running, _ = lfilter([momentum], [1.0, -decay], batch, axis=0, zi=(decay * init)[None, :])
    running = np.concatenate([init[None, :], running], axis=0)
    return running[:, 0] if np.ndim(batch_values) == 1 else running


def replay_running_stats(batch_means, batch_vars, momentum, init_mean=0.0, init_var=1.0):
    """(running_mean, running_var) trajectories, float64 tensors of shape (steps + 1, units), row 0 the initial values.

    `batch_means` and `batch_vars` (unbiased) have shape (steps, units) or (steps,); `momentum` is in
    (0, 1] or None, and the rows equal the buffers of a BatchNorm layer trained with that momentum.
    """
    if np.shape(batch_means) != np.shape(batch_vars):
        raise ValueError(f"batch_means and batch_vars differ in shape: {np.shape(batch_means)}, {np.shape(batch_vars)}")
    return (
        torch.from_numpy(replay_running_average(batch_means, momentum, init_mean)),
        torch.from_numpy(replay_running_average(batch_vars, momentum, init_var)),
    )


def running_weights(steps, momentum):
    """(weight of the initial value, weights of batches 1..steps) in the running value after `steps` steps."""
    _check_momentum(momentum)
    if momentum is None:
        return (1.0, np.zeros(0)) if steps == 0 else (0.0, np.full(steps, 1.0 / steps))
    decay = 1.0 - momentum
    return decay**steps, momentum * decay ** np.arange(steps - 1, -1, -1, dtype=np.float64)


def running_stats_at(recording, step, momentum, init_mean=0.0, init_var=1.0):
    """{layer name: (running_mean, running_var)} after `step` steps with `momentum`, in closed form (float64, units)."""
    init_weight, weights = running_weights(step, momentum)
    weights = torch.from_numpy(weights)
    stats = {}
    for name, layer in recording.items():
        if not 0 <= step <= len(layer.mean):
            raise ValueError(f"step must be in [0, {len(layer.mean)}] for layer {name!r}, got {step}")
        mean = init_weight * init_mean + weights @ layer.mean[:step]  # (steps,) @ (steps, units) -> (units,)
        var = init_weight * init_var + weights @ layer.var[:step]
        stats[name] = (mean, var)
    return stats


def keras_to_torch_momentum(momentum):
    """PyTorch's momentum for a Keras momentum (Keras' 0.99 weights the old value; PyTorch's 0.01 the new batch)."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ValueError(f"Keras momentum must be a number in [0, 1), got {momentum!r}")
    return 1.0 - momentum


def torch_to_keras_momentum(momentum):
    """Keras' momentum for a PyTorch momentum (PyTorch's None, a cumulative average, has no Keras counterpart)."""
    if momentum is None:
        raise ValueError("momentum=None (cumulative average) has no Keras equivalent; pass a number in (0, 1]")
    _check_momentum(momentum)
    return 1.0 - momentum


def _entry_mean_var(entry):
    return (entry.mean, entry.var) if hasattr(entry, "mean") else tuple(entry)


@contextmanager
def swapped_running_stats(model, stats):
    """Within the block the model is in eval mode and normalizes with `stats` ({name: (mean, var) or PopulationStats}).

    Layers not named in `stats` keep their buffers; buffers and train/eval modes are restored on exit.
    """
    layers = dict(batchnorm_layers(model))
    unknown = set(stats) - set(layers)
    if unknown:
        raise ValueError(f"stats name layers the model does not have: {sorted(unknown)}; it has {sorted(layers)}")
    modes = {module: module.training for module in model.modules()}
    saved = {name: (layers[name].running_mean.clone(), layers[name].running_var.clone()) for name in stats}
    try:
        with torch.no_grad():
            for name, entry in stats.items():
                mean, var = _entry_mean_var(entry)
                layers[name].running_mean.copy_(torch.as_tensor(mean))
                layers[name].running_var.copy_(torch.as_tensor(var))
        model.eval()
        yield model
    finally:
        with torch.no_grad():
            for name, (mean, var) in saved.items():
                layers[name].running_mean.copy_(mean)
                layers[name].running_var.copy_(var)
        for module, training in modes.items():
            module.training = training


def evaluate_with_stats(model, loader, stats, device=None):
    """Eval-mode accuracy (percent) with every BatchNorm layer normalizing with `stats` instead of its buffers.

    `stats` maps each BatchNorm layer's name to (mean, var) or a PopulationStats (its unbiased var
    is used, like running_var). The model's buffers and modes are exactly as before afterwards.
    """
    missing = {name for name, _ in batchnorm_layers(model)} - set(stats)
    if missing:
        raise ValueError(f"stats must cover every BatchNorm layer; missing {sorted(missing)}")
    with swapped_running_stats(model, stats):
        return compute_accuracy(model, loader, device)


class _MomentsAccumulator:
    """Count, mean and sum of squared deviations per unit, merged batch by batch (Chan et al., 1979)."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values):  # (values, C)
        values = values.double()
        count, mean = len(values), values.mean(0)
        m2 = ((values - mean) ** 2).sum(0)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / total
        self.count = total


def _input_moments(model, module, loader, device):
    accumulator = _MomentsAccumulator()
    handle = module.register_forward_hook(lambda _module, inputs, _output: accumulator.add(_unit_view(inputs[0])))
    try:
        with torch.no_grad():
            for images, _ in loader:
                model(images.to(device))
    finally:
        handle.remove()
    return accumulator


def _population_entry(moments):
    return PopulationStats(
        mean=moments.mean.cpu(),
        var=(moments.m2 / (moments.count - 1)).cpu(),
        var_biased=(moments.m2 / moments.count).cpu(),
        count=moments.count,
    )


@torch.no_grad()
def _population_layer_by_layer(model, loader, device):
    """population_stats for an nn.Sequential whose BatchNorms are its children: one pass, child by child."""
    activations = [images.to(device) for images, _ in loader]  # one child's output for all of loader at a time
    names = [name for name, _ in batchnorm_layers(model)]
    stats = {}
    with swapped_running_stats(model, {}):  # eval mode (dropout off), restored afterwards
        for name, child in model.named_children():
            if name in names:
                moments = _MomentsAccumulator()
                for batch in activations:
                    moments.add(_unit_view(batch))
                stats[name] = _population_entry(moments)
            if len(stats) == len(names):
                return stats
            with swapped_running_stats(model, stats):
                activations = [child(batch) for batch in activations]
    return stats


def population_stats(model, loader, device=None):
    """{layer name: PopulationStats} of each BatchNorm layer's input over all of `loader`, in eval mode.

    Layers are done in order, each with the earlier layers already normalizing with their
    population statistics, which is what eval mode will see once these are installed. For an
    nn.Sequential this takes one pass and holds one layer's activations for the whole loader.
    """
    device = device or next(model.parameters()).device
    if isinstance(model, nn.Sequential) and all("." not in name for name, _ in batchnorm_layers(model)):
        return _population_layer_by_layer(model, loader, device)
    stats = {}
    for name, module in batchnorm_layers(model):
        with swapped_running_stats(model, stats):
            stats[name] = _population_entry(_input_moments(model, module, loader, device))
    return stats


def recalibrate(model, loader, device=None):
    """Replace every BatchNorm's running statistics by the average of its batch statistics over `loader`; returns model.

    The nn-API recipe: reset_running_stats(), momentum=None (cumulative average), forward passes
    under no_grad with only the BatchNorm layers in train mode (dropout stays off), then the old
    momentum back and the model in eval mode.
    """
    device = device or next(model.parameters()).device
    layers = [module for _, module in batchnorm_layers(model)]
    momenta = [module.momentum for module in layers]
    model.eval()
    try:
        for module in layers:
            module.reset_running_stats()
            module.momentum = None
            module.train()
        with torch.no_grad():
            for images, _ in loader:
                model(images.to(device))
    finally:
        for module, momentum in zip(layers, momenta, strict=True):
            module.momentum = momentum
        model.eval()
    return model


def _folded_linear(linear, batchnorm):
    """One Linear computing batchnorm(linear(x)) with batchnorm in eval mode."""
    # y = gamma * (W x + b - mu) / sqrt(var + eps) + beta = (scale * W) x + scale * (b - mu) + beta
    scale = 1.0 / torch.sqrt(batchnorm.running_var.double() + batchnorm.eps)
    shift = -batchnorm.running_mean.double() * scale
    if batchnorm.affine:
        scale, shift = scale * batchnorm.weight.double(), shift * batchnorm.weight.double() + batchnorm.bias.double()
    bias = linear.bias.double() if linear.bias is not None else torch.zeros_like(scale)
    folded = nn.Linear(linear.in_features, linear.out_features, bias=True)
    folded.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(scale[:, None] * linear.weight.double())
        folded.bias.copy_(scale * bias + shift)
    return folded


def _fold_sequential(sequential, prefix):
    layers = []
    for name, module in sequential.named_children():
        if isinstance(module, nn.Sequential):
            module = _fold_sequential(module, f"{prefix}{name}.")
        elif isinstance(module, BATCHNORM_TYPES):
            previous = layers[-1] if layers else None
            if not isinstance(previous, nn.Linear):
                after = type(previous).__name__ if previous is not None else "nothing"
                raise ValueError(
                    f"cannot fold BatchNorm layer {prefix}{name!s}: it follows {after}, not a Linear; "
                    "only a BatchNorm directly after a Linear folds into it"
                )
            if not module.track_running_stats or module.running_mean is None:
                raise ValueError(f"cannot fold BatchNorm layer {prefix}{name}: it has no running statistics")
            layers[-1] = _folded_linear(previous, module)
            continue
        layers.append(module)
    return nn.Sequential(*layers)


def fold_batchnorm(model):
    """An eval-mode copy of the nn.Sequential `model` with each BatchNorm folded into the Linear just before it.

    Its eval outputs equal the original's; a BatchNorm anywhere else (after an activation, first
    in the model, inside a non-Sequential module) raises ValueError naming it.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"fold_batchnorm needs an nn.Sequential, got {type(model).__name__}")
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        owner = model.get_submodule(parent) if parent else model
        if isinstance(module, BATCHNORM_TYPES) and not isinstance(owner, nn.Sequential):
            raise ValueError(f"cannot fold BatchNorm layer {name}: it is in a {type(owner).__name__}, not a Sequential")
    return _fold_sequential(model, "").eval()


class KeptWeightsEvaluator:
    """Eval-mode accuracy of a recorder's kept weights with given BatchNorm statistics, on a loader held in memory.

    For an nn.Sequential the part before the first BatchNorm does not depend on the statistics, so
    its output on the whole loader is computed once per kept step and cached (`max_cached` steps).
    """

    def __init__(self, recorder, loader, device=None, max_cached=16):
        self.recorder = recorder
        images, labels = zip(*loader, strict=True)
        self.images, self.labels = torch.cat(images), torch.cat(labels).cpu()
        self.device = device
        self.max_cached = max_cached
        self._cache = OrderedDict()  # step -> (model, statistics-dependent part, features before it)

    @staticmethod
    def _split(model):
        if isinstance(model, nn.Sequential):
            for index, child in enumerate(model):
                if any(isinstance(module, BATCHNORM_TYPES) for module in child.modules()):
                    return model[:index], model[index:]
        return nn.Identity(), model

    @torch.no_grad()
    def _prepared(self, step):
        if step not in self._cache:
            model = self.recorder.model_at(step).eval()
            prefix, suffix = self._split(model)
            device = self.device or next(model.parameters()).device
            self._cache[step] = (model, suffix, prefix(self.images.to(device)))
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        self._cache.move_to_end(step)
        return self._cache[step]

    @torch.no_grad()
    def accuracy(self, step, stats):
        """Accuracy in percent of the weights kept at `step`, every BatchNorm normalizing with `stats`."""
        model, suffix, features = self._prepared(step)
        missing = {name for name, _ in batchnorm_layers(model)} - set(stats)
        if missing:
            raise ValueError(f"stats must cover every BatchNorm layer; missing {sorted(missing)}")
        with swapped_running_stats(model, stats):
            predictions = suffix(features).argmax(dim=1).cpu()
        return 100.0 * (predictions == self.labels).sum().item() / len(self.labels)


def accuracy_vs_momentum(recorder, loader, steps, momenta, population_loader=None, device=None):
    """Rows {step, momentum, statistics, accuracy}: eval-mode accuracy (percent) of the weights kept at each step.

    Each step's weights normalize with the running statistics replayed for each momentum (None:
    cumulative average) and, when `population_loader` is given, with that data's population
    statistics (row with momentum NaN and statistics "whole training set").
    """
    evaluator = KeptWeightsEvaluator(recorder, loader, device, max_cached=1)
    rows = []
    for step in steps:
        for momentum in momenta:
            accuracy = evaluator.accuracy(step, running_stats_at(recorder.recording, step, momentum))
            label = "cumulative average" if momentum is None else "running average"
            rows.append({"step": step, "momentum": momentum, "statistics": label, "accuracy": accuracy})
        if population_loader is not None:
            population = population_stats(recorder.model_at(step), population_loader, device)
            accuracy = evaluator.accuracy(step, population)
            rows.append({"step": step, "momentum": math.nan, "statistics": "whole training set", "accuracy": accuracy})
    return rows
