"""Fold BatchNorm away for deployment: in eval mode it is a fixed affine map per channel, which a Linear or a
convolution absorbs.

BatchNorm directly after a Linear or convolution folds into it: gamma * (W x + b - running_mean) /
sqrt(running_var + eps) + beta is again one of x, with each output channel's weights scaled. That is
exact for any kernel size, stride, padding, padding mode, dilation and groups. BatchNorm after the
activation folds into the next layer: W (s * h + t) + b = (W * s) h + (W t + b), with s = gamma /
sqrt(running_var + eps) and t = beta - s * running_mean per input channel; dropout in between is the
identity in eval mode. A convolution that pads with zeros cannot take the shift t: its border would
need t instead of 0, so that case raises ValueError (replicate, reflect and circular padding copy t along).
"""

import copy

import torch
from torch import nn

from bnlib.models import linear_bias
from bnlib.stats.batchnorm import BATCHNORM_TYPES, batchnorm_affine

IDENTITY_IN_EVAL = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
ABSORBING = (nn.Linear, *CONVOLUTIONS)  # layers a BatchNorm folds into


def _with_weights(like, weight, bias):
    """A copy of the Linear or convolution `like` (stride, padding, groups... kept) holding the float64 `weight`
    and `bias`, cast to its dtype and device."""
    folded = copy.deepcopy(like)
    folded.weight = nn.Parameter(weight.to(like.weight))
    folded.bias = nn.Parameter(bias.to(like.weight))
    return folded


def _per_weight(layer, values):
    """(C_in,) per-input-channel `values` laid out like `layer.weight` (out, in / groups, *kernel), groups respected."""
    weight = layer.weight
    groups, (out, in_per_group) = getattr(layer, "groups", 1), weight.shape[:2]
    laid_out = values.view(groups, 1, in_per_group).expand(groups, out // groups, in_per_group).reshape(out, -1)
    return laid_out.view(out, in_per_group, *[1] * (weight.dim() - 2))


def fold_into_previous(layer, batchnorm):
    """One layer computing batchnorm(layer(x)), batchnorm in eval mode: each output channel's weights scaled, the
    bias scaled and shifted."""
    scale, shift = batchnorm_affine(batchnorm)
    weight = layer.weight.double()
    scaled = scale.view(-1, *[1] * (weight.dim() - 1)) * weight
    return _with_weights(layer, scaled, scale * linear_bias(layer).double() + shift)


def fold_into_next(batchnorm, layer):
    """One layer computing layer(batchnorm(h)), batchnorm in eval mode: each input channel's weights scaled, the
    weights times the shift added to the bias (exact where `layer` does not pad with zeros)."""
    scale, shift = batchnorm_affine(batchnorm)
    weight = layer.weight.double()
    shifted = (weight * _per_weight(layer, shift)).flatten(1).sum(dim=1)  # (out,): W t, summed over inputs and kernel
    return _with_weights(layer, weight * _per_weight(layer, scale), shifted + linear_bias(layer).double())


def pads_with_zeros(layer):
    """True when the convolution `layer` adds a border of zeros to its input (a Linear never does)."""
    if not isinstance(layer, CONVOLUTIONS) or layer.padding_mode != "zeros" or layer.padding == "valid":
        return False
    if layer.padding == "same":
        return any(dilation * (size - 1) for dilation, size in zip(layer.dilation, layer.kernel_size, strict=True))
    return any(layer.padding)


def flat_layers(sequential, prefix=""):
    """(dotted name, module) of the layers of an nn.Sequential, nested nn.Sequentials opened, in order."""
    for name, module in sequential.named_children():
        if isinstance(module, nn.Sequential):
            yield from flat_layers(module, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", module


def _absorbs(layer, side, batchnorm):
    """True when `layer` is a Linear or convolution whose output ("out") or input ("in") channels are batchnorm's."""
    if not isinstance(layer, ABSORBING):
        return False
    weight = layer.weight
    channels = weight.shape[0] if side == "out" else weight.shape[1] * getattr(layer, "groups", 1)
    return channels == batchnorm.num_features


def _fold_layers(named_layers):
    """The layers with every BatchNorm folded into a neighbouring layer; ValueError where none can absorb it exactly."""
    layers, pending = [], None  # pending: (name, BatchNorm) waiting for the next Linear or convolution
    for name, module in named_layers:
        if isinstance(module, BATCHNORM_TYPES):
            previous = layers[-1] if layers else None
            if pending is None and _absorbs(previous, "out", module):
                layers[-1] = fold_into_previous(previous, module)
            elif pending is None:
                pending = (name, module)
            else:
                raise ValueError(f"cannot fold BatchNorm layer {name}: it follows BatchNorm {pending[0]} directly")
        elif pending is not None and _absorbs(module, "in", pending[1]):
            if pads_with_zeros(module):
                raise ValueError(
                    f"cannot fold BatchNorm layer {pending[0]} into {type(module).__name__} {name}: that convolution "
                    "pads with zeros, where the folded shift would need the border shifted too; fold into a layer "
                    "without zero padding, or put the BatchNorm directly after a convolution"
                )
            layers.append(fold_into_next(pending[1], module))
            pending = None
        elif pending is not None and not isinstance(module, IDENTITY_IN_EVAL):
            raise ValueError(
                f"cannot fold BatchNorm layer {pending[0]}: {type(module).__name__} ({name}) comes between it and "
                "the next Linear or convolution; only a layer directly before it, or one after it with at most "
                "dropout in between, can absorb it"
            )
        else:
            layers.append(module)
    if pending is not None:
        raise ValueError(f"cannot fold BatchNorm layer {pending[0]}: no Linear or convolution before or after it "
                         "can absorb it")  # fmt: skip
    return layers


def _check_foldable(model):
    """ValueError unless `model` is an eval-mode nn.Sequential whose BatchNorm layers keep running statistics."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"fold_batchnorm needs an nn.Sequential, got {type(model).__name__}")
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        owner = model.get_submodule(parent) if parent else model
        if isinstance(module, BATCHNORM_TYPES) and not isinstance(owner, nn.Sequential):
            raise ValueError(f"cannot fold BatchNorm layer {name}: it is in a {type(owner).__name__}, not a Sequential")
        if isinstance(module, BATCHNORM_TYPES) and (not module.track_running_stats or module.running_mean is None):
            raise ValueError(f"cannot fold BatchNorm layer {name}: it has no running statistics")
    training = [name or "the model" for name, module in model.named_modules() if module.training]
    if training:
        raise ValueError(f"fold_batchnorm folds the eval-mode model: call model.eval() first ({training[0]} is in "
                         "train mode, where BatchNorm normalizes with each batch's own statistics)")  # fmt: skip


@torch.no_grad()
def fold_batchnorm(model):
    """An eval-mode copy of the eval-mode nn.Sequential `model` without BatchNorm layers, giving the same outputs.

    Each BatchNorm folds into the Linear or convolution directly before it or, failing that (BatchNorm
    after the activation, or first), into the next one with only dropout in between. Nested
    Sequentials are flattened into one. A model in train mode raises ValueError (call model.eval()),
    and so does a BatchNorm that no layer can absorb exactly, naming it.
    """
    _check_foldable(model)
    copied = copy.deepcopy(model)  # the unfolded layers are reused: the original must keep its own
    return nn.Sequential(*_fold_layers(flat_layers(copied))).eval()
