"""Fold BatchNorm away for deployment: in eval mode it is a fixed affine map per unit, which a Linear absorbs.

BatchNorm directly after a Linear folds into that Linear: gamma * (W x + b - running_mean) /
sqrt(running_var + eps) + beta is again a Linear of x. BatchNorm after the activation folds into
the next Linear: W2 (s * h + t) + b2 = (W2 * s) h + (W2 t + b2), with s = gamma / sqrt(running_var
+ eps) and t = beta - s * running_mean; dropout in between is the identity in eval mode.
"""

import copy

import torch
from torch import nn

from bnlib.models import linear_bias
from bnlib.stats.batchnorm import BATCHNORM_TYPES, batchnorm_affine

IDENTITY_IN_EVAL = (nn.Dropout, nn.AlphaDropout, nn.Identity)  # what may sit between a BatchNorm and the next Linear


def _new_linear(like, weight, bias):
    """A Linear shaped, typed and placed like `like`, holding the float64 `weight` and `bias` (cast back)."""
    linear = nn.Linear(like.in_features, like.out_features, bias=True)
    linear.to(device=like.weight.device, dtype=like.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


def fold_into_previous(linear, batchnorm):
    """One Linear computing batchnorm(linear(x)), batchnorm in eval mode: rows of W scaled, bias scaled and shifted."""
    scale, shift = batchnorm_affine(batchnorm)
    return _new_linear(linear, scale[:, None] * linear.weight.double(), scale * linear_bias(linear).double() + shift)


def fold_into_next(batchnorm, linear):
    """One Linear computing linear(batchnorm(h)), batchnorm in eval mode: columns of W scaled, W @ shift added."""
    scale, shift = batchnorm_affine(batchnorm)
    weight = linear.weight.double()
    return _new_linear(linear, weight * scale[None, :], weight @ shift + linear_bias(linear).double())


def flat_layers(sequential, prefix=""):
    """(dotted name, module) of the layers of an nn.Sequential, nested nn.Sequentials opened, in order."""
    for name, module in sequential.named_children():
        if isinstance(module, nn.Sequential):
            yield from flat_layers(module, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", module


def _check_foldable(name, batchnorm):
    if not batchnorm.track_running_stats or batchnorm.running_mean is None:
        raise ValueError(f"cannot fold BatchNorm layer {name}: it has no running statistics")


def _fold_layers(named_layers):
    """The layers with every BatchNorm folded into a neighbouring Linear; ValueError where none can absorb it."""
    layers, pending = [], None  # pending: (name, BatchNorm) waiting for the next Linear
    for name, module in named_layers:
        if isinstance(module, BATCHNORM_TYPES):
            _check_foldable(name, module)
            previous = layers[-1] if layers else None
            if pending is None and isinstance(previous, nn.Linear) and previous.out_features == module.num_features:
                layers[-1] = fold_into_previous(previous, module)
            elif pending is None:
                pending = (name, module)
            else:
                raise ValueError(f"cannot fold BatchNorm layer {name}: it follows BatchNorm {pending[0]} directly")
        elif pending is not None and isinstance(module, nn.Linear) and module.in_features == pending[1].num_features:
            layers.append(fold_into_next(pending[1], module))
            pending = None
        elif pending is not None and not isinstance(module, IDENTITY_IN_EVAL):
            raise ValueError(
                f"cannot fold BatchNorm layer {pending[0]}: {type(module).__name__} ({name}) comes between it and "
                "the next Linear; only a Linear directly before it, or a Linear after it with at most dropout "
                "in between, can absorb it"
            )
        else:
            layers.append(module)
    if pending is not None:
        raise ValueError(f"cannot fold BatchNorm layer {pending[0]}: no Linear before or after it can absorb it")
    return layers


def fold_batchnorm(model):
    """An eval-mode copy of the nn.Sequential `model` without BatchNorm layers, giving the same eval outputs.

    Each BatchNorm folds into the Linear directly before it or, failing that (BatchNorm after the
    activation, or first), into the next Linear with only dropout in between. Nested Sequentials
    are flattened into one. A BatchNorm no Linear can absorb raises ValueError naming it.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"fold_batchnorm needs an nn.Sequential, got {type(model).__name__}")
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        owner = model.get_submodule(parent) if parent else model
        if isinstance(module, BATCHNORM_TYPES) and not isinstance(owner, nn.Sequential):
            raise ValueError(f"cannot fold BatchNorm layer {name}: it is in a {type(owner).__name__}, not a Sequential")
    copied = copy.deepcopy(model)  # the unfolded layers are reused: the original must keep its own
    return nn.Sequential(*_fold_layers(flat_layers(copied))).eval()

