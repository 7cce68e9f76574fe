"""Fold BatchNorm away for deployment: in eval mode it is a fixed affine map per unit, which a Linear absorbs.

BatchNorm directly after a Linear folds into that Linear: gamma * (W x + b - running_mean) /
sqrt(running_var + eps) + beta is again a Linear of x. BatchNorm after the activation folds into
the next Linear: W2 (s * h + t) + b2 = (W2 * s) h + (W2 t + b2), with s = gamma / sqrt(running_var
+ eps) and t = beta - s * running_mean; dropout in between is the identity in eval mode.
"""

import copy

import torch
from torch import nn

from bnlib.batchnorm import BATCHNORM_TYPES

IDENTITY_IN_EVAL = (nn.Dropout, nn.AlphaDropout, nn.Identity)  # what may sit between a BatchNorm and the next Linear


def batchnorm_affine(batchnorm):
    """(scale, shift), float64 tensors of shape (units,), with batchnorm(z) = scale * z + shift in eval mode."""
    scale = 1.0 / torch.sqrt(batchnorm.running_var.double() + batchnorm.eps)
    shift = -batchnorm.running_mean.double() * scale
    if batchnorm.affine:
        scale, shift = scale * batchnorm.weight.double(), shift * batchnorm.weight.double() + batchnorm.bias.double()
    return scale, shift


def _new_linear(like, weight, bias):
    """A Linear shaped, typed and placed like `like`, holding the float64 `weight` and `bias` (cast back)."""
    linear = nn.Linear(like.in_features, like.out_features, bias=True)
    linear.to(device=like.weight.device, dtype=like.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


def _bias(linear):
    return linear.bias.double() if linear.bias is not None else torch.zeros(linear.out_features, dtype=torch.float64)


def fold_into_previous(linear, batchnorm):
    """One Linear computing batchnorm(linear(x)), batchnorm in eval mode: rows of W scaled, bias scaled and shifted."""
    scale, shift = batchnorm_affine(batchnorm)
    return _new_linear(linear, scale[:, None] * linear.weight.double(), scale * _bias(linear) + shift)


def fold_into_next(batchnorm, linear):
    """One Linear computing linear(batchnorm(h)), batchnorm in eval mode: columns of W scaled, W @ shift added."""
    scale, shift = batchnorm_affine(batchnorm)
    weight = linear.weight.double()
    return _new_linear(linear, weight * scale[None, :], weight @ shift + _bias(linear))


def _flat_children(sequential, prefix=""):
    """(dotted name, module) of the leaves of nested nn.Sequentials, in order."""
    for name, module in sequential.named_children():
        if isinstance(module, nn.Sequential):
            yield from _flat_children(module, f"{prefix}{name}.")
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
    return nn.Sequential(*_fold_layers(_flat_children(copied))).eval()


MAGNITUDE_PRESERVING = (nn.ReLU, nn.Tanh, nn.Flatten, *IDENTITY_IN_EVAL)  # |f(z)| <= |z|, 1-Lipschitz


@torch.no_grad()
def fold_tolerance(model, inputs):
    """Per-output bound, shape of model(inputs), on |fold_batchnorm(model)(inputs) - model(inputs)|.

    In floating point a sum of n terms is within n * u * (sum of |terms|) of the exact sum (Higham,
    Accuracy and Stability of Numerical Algorithms, 2002, section 3.1), u the unit roundoff of the
    model's dtype (2**-24 for float32, 2**-53 for float64). Pushing |inputs| through the
    eval-mode model with every weight, bias and BatchNorm term taken in absolute value gives the sum
    of |terms| behind each output, M; each model is then within (sum of the layers' term counts) * u *
    M of the exact value, to first order, and the two within twice that, whatever the summation order.
    """
    magnitude, terms = inputs.detach().double().abs(), 0
    for name, layer in _flat_children(model):
        if isinstance(layer, nn.Linear):
            magnitude = magnitude @ layer.weight.double().abs().T
            if layer.bias is not None:
                magnitude = magnitude + layer.bias.double().abs()
            terms += layer.in_features + 1
        elif isinstance(layer, BATCHNORM_TYPES):
            scale, _ = batchnorm_affine(layer)  # |gamma| / sqrt(var + eps), times |z| + |running_mean|, plus |beta|
            beta = layer.bias.double().abs() if layer.affine else 0.0
            magnitude = scale.abs() * (magnitude + layer.running_mean.double().abs()) + beta
            terms += 4  # subtract, divide by the square root, multiply, add
        elif isinstance(layer, nn.Flatten):
            magnitude = layer(magnitude)
        elif not isinstance(layer, MAGNITUDE_PRESERVING):
            raise ValueError(f"fold_tolerance cannot bound layer {name} ({type(layer).__name__})")
    unit_roundoff = torch.finfo(next(model.parameters()).dtype).eps / 2
    return 2 * terms * unit_roundoff * magnitude
