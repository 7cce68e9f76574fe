"""Finding a model's BatchNorm layers and putting chosen statistics into them for a while.

Every other statistics module (recording, population, evaluation, folding) builds on these.
"""

import copy
from contextlib import contextmanager

import torch
from torch import nn

from bnlib.train import evaluation_mode

BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batchnorm_layers(model):
    """(name, module) for every BatchNorm layer of `model`, in module order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, BATCHNORM_TYPES)]


def first_batchnorm(model):
    """The first BatchNorm layer of `model`, in module order."""
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("model has no BatchNorm layer")
    return layers[0][1]


def unit_view(inputs):
    """(N, C), (N, C, L) or (N, C, H, W) -> (values, C): one column per channel, as BatchNorm reduces them."""
    return inputs.transpose(0, 1).reshape(inputs.shape[1], -1).T


def check_covers_every_layer(model, stats):
    """Raise ValueError unless `stats` has an entry for every BatchNorm layer of `model`."""
    missing = {name for name, _ in batchnorm_layers(model)} - set(stats)
    if missing:
        raise ValueError(f"stats must cover every BatchNorm layer; missing {sorted(missing)}")


def mean_and_var(entry):
    """(mean, var) of a stats entry: a (mean, var) pair, or anything with .mean and .var (e.g. PopulationStats)."""
    return (entry.mean, entry.var) if hasattr(entry, "mean") else tuple(entry)


def batchnorm_affine(batchnorm):
    """(scale, shift), float64 tensors of shape (units,), with batchnorm(z) = scale * z + shift in eval mode."""
    scale = 1.0 / torch.sqrt(batchnorm.running_var.double() + batchnorm.eps)
    shift = -batchnorm.running_mean.double() * scale
    if batchnorm.affine:
        scale, shift = scale * batchnorm.weight.double(), shift * batchnorm.weight.double() + batchnorm.bias.double()
    return scale, shift


@contextmanager
def swapped_running_stats(model, stats):
    """Within the block the model is in eval mode and normalizes with `stats` ({name: (mean, var) or PopulationStats}).

    Layers not named in `stats` keep their buffers; buffers and train/eval modes are restored on exit.
    For eval mode alone, use `bnlib.train.evaluation_mode`.
    """
    layers = dict(batchnorm_layers(model))
    unknown = set(stats) - set(layers)
    if unknown:
        raise ValueError(f"stats name layers the model does not have: {sorted(unknown)}; it has {sorted(layers)}")
    saved = {name: (layers[name].running_mean.clone(), layers[name].running_var.clone()) for name in stats}
    try:
        with torch.no_grad():
            for name, entry in stats.items():
                mean, var = mean_and_var(entry)
                layers[name].running_mean.copy_(torch.as_tensor(mean))
                layers[name].running_var.copy_(torch.as_tensor(var))
        with evaluation_mode(model):
            yield model
    finally:
        with torch.no_grad():
            for name, (mean, var) in saved.items():
                layers[name].running_mean.copy_(mean)
                layers[name].running_var.copy_(var)


def with_per_batch_statistics(model):
    """A copy of `model` whose BatchNorm layers keep no buffers and use each batch's statistics, in eval mode too.

    This is what `nn.BatchNorm1d(..., track_running_stats=False)` builds: gamma and beta are kept,
    `running_mean`, `running_var` and `num_batches_tracked` are None and leave the state_dict.
    """
    model = copy.deepcopy(model)
    for _, layer in batchnorm_layers(model):
        layer.track_running_stats = False
        layer.running_mean = layer.running_var = layer.num_batches_tracked = None
    return model
