"""PyTorch's rule for BatchNorm's running statistics, replayed for any momentum from recorded batch statistics.

Every BatchNorm layer applies, after each forward pass in train mode,

    running = (1 - momentum) * running + momentum * batch

with `momentum=0.1` by default, so the newest batch gets weight 0.1. `momentum=None` makes it a
cumulative average (the factor is 1 / num_batches_tracked). `running_mean` takes the batch mean;
`running_var` takes the unbiased batch variance (divided by n - 1), although train mode normalizes
with the biased one (divided by n). Running statistics never feed back into training, so one
recording of the per-batch statistics (`bnlib.stats.recording`) reproduces the buffers of a run with
any momentum.

Keras' BatchNormalization keeps a moving average of the same form with the two weights swapped,
`moving = momentum * moving + (1 - momentum) * batch`, so its `momentum` (0.99 by default) weights
the old value; the converters below translate between the two. Nothing else about Keras is assumed.
"""

import numpy as np
import torch
from scipy.signal import lfilter

from bnlib.checks import check_number


def check_momentum(momentum):
    """`momentum` when it is a number in (0, 1] or None (the cumulative average); else ValueError."""
    if momentum is None:
        return None
    return check_number("momentum", momentum, 0, 1, low_open=True)


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
    momentum = check_momentum(momentum)
    batch = _as_float64(batch_values)
    init = np.broadcast_to(np.asarray(init, dtype=np.float64), batch.shape[1:])
    if momentum is None:  # PyTorch's factor 1 / num_batches_tracked gives the mean of the batches so far
        running = np.cumsum(batch, axis=0) / np.arange(1, len(batch) + 1)[:, None]
    else:  # y[t] = momentum * x[t] + (1 - momentum) * y[t - 1], a first-order IIR filter with y[0] = init
        decay = 1.0 - momentum
        running, _ = lfilter([momentum], [1.0, -decay], batch, axis=0, zi=(decay * init)[None, :])
    running = np.concatenate([init[None, :], running], axis=0)
    return running[:, 0] if np.ndim(batch_values) == 1 else running


def running_weights(steps, momentum):
    """(weight of the initial value, (steps,) weights of batches 1..steps) in the running value after `steps` steps.

    The rule is linear, so the weights are replays of it: of zeros from an initial 1 for the initial
    value, and of a single 1 for a batch (a batch k steps back weighs what the first batch weighs
    after k + 1 steps; with momentum=None every batch weighs the same).
    """
    init_weight = replay_running_average(np.zeros(steps), momentum, init=1.0)[-1]
    impulse = np.zeros(steps)
    impulse[:1] = 1.0
    response = replay_running_average(impulse, momentum)[1:]  # response[k]: the first batch's weight after k + 1
    weights = response[-1:].repeat(steps) if momentum is None else response[::-1]
    return init_weight, weights


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


def running_stats_at(recording, step, momentum, init_mean=0.0, init_var=1.0):
    """{layer name: (running_mean, running_var)} after `step` steps with `momentum`, float64 tensors of shape (units,).

    `recording` is a BatchStatsRecorder's {name: LayerRecording}; the last row of the replay, computed
    as one weighted sum (fast enough to follow the explorer's slider).
    """
    init_weight, weights = running_weights(step, momentum)
    weights = torch.from_numpy(weights.copy())
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
    return 1.0 - check_number("Keras momentum", momentum, 0, 1, high_open=True)


def torch_to_keras_momentum(momentum):
    """Keras' momentum for a PyTorch momentum (PyTorch's None, a cumulative average, has no Keras counterpart)."""
    if momentum is None:
        raise ValueError("momentum=None (cumulative average) has no Keras equivalent; pass a number in (0, 1]")
    return 1.0 - check_momentum(momentum)
