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


class _RowBuffer:
    """One layer's recording as it grows: (capacity, units) float64 buffers whose rows are written in place.

    Rows in preallocated buffers, doubled when full, rather than small tensors kept per step: with
    those, a recorded run's process grew by about 60 KB per step (measured), for 2 KB of statistics.
    """

    def __init__(self, units, capacity=1024):
        self.mean = torch.empty(capacity, units, dtype=torch.float64)  # (capacity, units)
        self.var = torch.empty(capacity, units, dtype=torch.float64)
        self.batch_size = torch.empty(capacity, dtype=torch.long)  # (capacity,)
        self.count = 0

    def add(self, values):
        """Write the batch mean, unbiased variance and size of `values` (values, units) as the next row."""
        if self.count == len(self.mean):
            self.mean, self.var, self.batch_size = (
                torch.cat([buffer, torch.empty_like(buffer)]) for buffer in (self.mean, self.var, self.batch_size)
            )
        self.mean[self.count].copy_(values.mean(0))  # copy_ also brings a GPU row to the CPU buffer
        self.var[self.count].copy_(values.var(0, unbiased=True))
        self.batch_size[self.count] = len(values)
        self.count += 1

    def recording(self):
        """The rows written so far, as a LayerRecording of (steps, units) views into the buffers."""
        return LayerRecording(self.mean[: self.count], self.var[: self.count], self.batch_size[: self.count])


class BatchStatsRecorder:
    """Records what every BatchNorm layer of `model` sees in train mode, while used as a context manager.

    For each train-mode forward pass it writes, per layer, the batch mean, the unbiased batch
    variance and the batch size as one row (eval-mode passes are skipped); `recording` maps each
    layer's name to a LayerRecording of (steps, units) tensors. Called as `recorder(model, step)`
    (the `on_batch` of `train_model`, or by hand after `optimizer.step()`), it keeps a copy of the
    model's state_dict at the steps in `keep_weights_at`; step 0 is copied on entering.
    """

    def __init__(self, model, keep_weights_at=()):
        self.model = model
        self.layers = batchnorm_layers(model)
        if not self.layers:
            raise ValueError("model has no BatchNorm layer to record")
        self.keep_weights_at = frozenset(int(step) for step in keep_weights_at)
        self.weights = {}  # step -> state_dict copy on the CPU
        self._buffers = {name: None for name, _ in self.layers}  # name -> _RowBuffer, made at the layer's first batch
        self._handles = []

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
            if self._buffers[name] is None:
                self._buffers[name] = _RowBuffer(values.shape[1])
            self._buffers[name].add(values)

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
        buffer = next(iter(self._buffers.values()))
        return 0 if buffer is None else buffer.count

    @property
    def recording(self):
        """{layer name: LayerRecording} with (steps, units) tensors of batch means and unbiased variances."""
        return {name: (buffer or _RowBuffer(0, capacity=0)).recording() for name, buffer in self._buffers.items()}

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
