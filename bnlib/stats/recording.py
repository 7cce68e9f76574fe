"""Record what every BatchNorm layer sees in train mode, and keep the weights at chosen steps.

The recording (per-step batch means and unbiased variances) is what `bnlib.stats.running` replays for any
momentum; the kept weights let eval mode be tried at those points of training.
"""

import copy
from dataclasses import dataclass

import torch

from bnlib.stats.batchnorm import batchnorm_layers, unit_view


@dataclass(frozen=True)
class LayerRecording:
    """Per-batch statistics one BatchNorm layer saw in train mode, one row per training step."""

    mean: torch.Tensor  # (steps, units) batch means, float64
    var: torch.Tensor  # (steps, units) unbiased batch variances, float64 (what running_var takes)
    batch_size: torch.Tensor  # (steps,) values per unit in each batch (N, or N * L for 3-d input)


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
            values = unit_view(inputs[0].detach()).double()  # (values, C)
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
    """A LayerRecording from the hook's (mean, var, batch size) rows."""
    if not rows:
        return LayerRecording(
            torch.empty(0, 0, dtype=torch.float64),
            torch.empty(0, 0, dtype=torch.float64),
            torch.empty(0, dtype=torch.long),
        )
    means, variances, sizes = zip(*rows, strict=True)
    return LayerRecording(torch.stack(means), torch.stack(variances), torch.tensor(sizes))
