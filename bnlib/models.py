"""The lecture's multilayer perceptrons (plain, with dropout, with a normalization layer before or after ReLU), and a
small convolutional network for notebook 09 with the same options."""

import inspect

import torch
from torch import nn

from bnlib.checks import check_choice, check_integer, check_number

BN_PLACEMENTS = (None, "before", "after")
NORMS = ("batch", "layer", "group")
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _check_widths(name, widths):
    """`widths` (make_mlp's `hidden`, make_cnn's `channels`) as a list of positive ints; else ValueError."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {widths!r}")
    return [check_integer(f"{name}[{index}]", size, minimum=1) for index, size in enumerate(widths)]


def _check_positive(name, value):
    return check_integer(name, value, minimum=1)


_ARGUMENT_CHECKS = {  # argument name -> check(name, value): the rules make_mlp and make_cnn share
    "hidden": _check_widths,
    "channels": _check_widths,
    "bn": lambda name, value: check_choice(name, value, BN_PLACEMENTS),
    "norm": lambda name, value: check_choice(name, value, NORMS),
    "groups": _check_positive,
    "bias": lambda name, value: check_choice(name, value, (None, True, False)),
    "dropout": lambda name, value: check_number(name, value, 0, 1, high_open=True),
    "activation": lambda name, value: check_choice(name, value, tuple(ACTIVATIONS)),
    "in_features": _check_positive,
    "in_channels": _check_positive,
    "image_size": _check_positive,
    "num_classes": _check_positive,
    "init_std": lambda name, value: None if value is None else check_number(name, value, 0, None, low_open=True),
    "zero_bias": lambda name, value: check_choice(name, value, (True, False)),
}


def _checked(arguments):
    """A model factory's arguments checked and normalized (ints, floats, lists), in signature order."""
    checked = {name: _ARGUMENT_CHECKS[name](name, value) for name, value in arguments.items()}
    widths, what = ("hidden", "hidden width") if "hidden" in checked else ("channels", "channel count")
    if checked["bn"] is not None and checked["norm"] == "group":
        uneven = [size for size in checked[widths] if size % checked["groups"]]
        if uneven:
            raise ValueError(f"groups must divide every {what}, got groups={checked['groups']} for {uneven}")
    return checked


def _norm_layer(norm, width, groups):
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.GroupNorm(groups, width)


def _norm_layer2d(norm, channels, groups):
    """BatchNorm2d; for "layer", GroupNorm with one group: statistics per image over (C, H, W), gamma per channel."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(1 if norm == "layer" else groups, channels)


def _resolve_bias(bias, bn, norm):
    """`bias` resolved: None drops it exactly where a BatchNorm directly follows (its beta makes the bias redundant)."""
    return not (bn == "before" and norm == "batch") if bias is None else bias


def make_mlp(
    hidden=(75, 45),
    *,
    bn=None,
    norm="batch",
    groups=5,
    bias=None,
    dropout=0.0,
    activation="relu",
    in_features=784,
    num_classes=10,
    init_std=None,
    zero_bias=False,
):
    """An nn.Sequential: Flatten, then per hidden layer Linear, a `norm` layer where `bn` puts it, activation, Dropout.

    `bn` places the normalization layer "before" or "after" the activation; `norm` picks it
    (BatchNorm1d, LayerNorm, or GroupNorm with `groups`). `bias=None` drops the Linear bias exactly
    where a BatchNorm directly follows it (its beta makes the bias redundant; LayerNorm and GroupNorm
    normalize over units, where a per-unit bias is not a constant shift); True/False force it.
    `init_std` draws every Linear weight from N(0, init_std²) (None: PyTorch's default);
    `zero_bias` sets every Linear bias to 0.
    """
    hidden = _checked(locals())["hidden"]  # first line: locals() holds exactly the arguments
    bias = _resolve_bias(bias, bn, norm)
    layers, width = [nn.Flatten()], in_features
    for size in hidden:
        layers.append(nn.Linear(width, size, bias=bias))
        block = [ACTIVATIONS[activation]()]
        if bn is not None:
            block.insert(0 if bn == "before" else 1, _norm_layer(norm, size, groups))
        layers += block
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, num_classes))
    _initialize(model, init_std, zero_bias)
    return model


def _initialize(model, init_std, zero_bias):
    """Redraw the Linear weights from N(0, init_std²) when `init_std` is given; zero the biases when `zero_bias`."""
    for layer in model:
        if isinstance(layer, nn.Linear):
            if init_std is not None:
                nn.init.normal_(layer.weight, mean=0.0, std=init_std)
            if zero_bias and layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _resolved_arguments(factory, options):
    """Every argument of `factory` with its default filled in, checked, JSON-ready; an unknown option: TypeError."""
    bound = inspect.signature(factory).bind(**options)
    bound.apply_defaults()
    return _checked(bound.arguments)


def mlp_arguments(**options):
    """Every `make_mlp` argument with its default filled in, checked, JSON-ready (lists, floats): a model's cache key.

    `bnlib.runs.mlp_spec` builds and keys every MLP run from these.
    An unknown option raises TypeError.
    """
    return _resolved_arguments(make_mlp, options)


def make_cnn(channels=(8, 16), *, bn=None, norm="batch", groups=4, bias=None, activation="relu", in_channels=1,
             image_size=28, num_classes=10):  # fmt: skip
    """An nn.Sequential: per entry of `channels` a block Conv2d(3x3, padding 1), a `norm` layer where `bn` puts it,
    activation, MaxPool2d(2); then Flatten and a Linear to `num_classes`. Input: (N, in_channels, image_size,
    image_size).

    `bn`, `norm`, `groups` and `bias` follow make_mlp's rules: `norm` picks BatchNorm2d, "layer" (GroupNorm with
    one group: statistics per image over (C, H, W)) or GroupNorm with `groups`; `bias=None` drops the convolution's
    bias exactly where a BatchNorm directly follows it. Each block halves the image size (rounding down).
    """
    channels = _checked(locals())["channels"]  # first line: locals() holds exactly the arguments
    if image_size < 2 ** len(channels):
        raise ValueError(f"image_size must be at least 2 ** len(channels) = {2 ** len(channels)} (each block halves "
                         f"it), got {image_size}")  # fmt: skip
    bias = _resolve_bias(bias, bn, norm)
    layers, width, size = [], in_channels, image_size
    for out in channels:
        layers.append(nn.Conv2d(width, out, kernel_size=3, padding=1, bias=bias))
        block = [ACTIVATIONS[activation]()]
        if bn is not None:
            block.insert(0 if bn == "before" else 1, _norm_layer2d(norm, out, groups))
        layers += [*block, nn.MaxPool2d(2)]
        width, size = out, size // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * size * size, num_classes))


def cnn_arguments(**options):
    """Every `make_cnn` argument with its default filled in, checked, JSON-ready: what `bnlib.runs.cnn_spec` keys."""
    return _resolved_arguments(make_cnn, options)


def linear_bias(linear):
    """The bias of `linear` (an nn.Linear or a convolution), or zeros like its weight's first dimension where it has
    none: the same map."""
    if linear.bias is not None:
        return linear.bias
    return torch.zeros(linear.weight.shape[0], dtype=linear.weight.dtype, device=linear.weight.device)


def first_linear(model):
    """The first nn.Linear of `model`, in module order (an MLP's first hidden layer)."""
    return next(module for module in model.modules() if isinstance(module, nn.Linear))


def input_layer(model):
    """The first nn.Linear or convolution of `model`, in module order: the layer that sees the input."""
    weighted = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return next(module for module in model.modules() if isinstance(module, weighted))


def output_layer(model):
    """The last nn.Linear of `model`, in module order (an MLP's output layer)."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)][-1]


def count_parameters(model):
    """Number of trainable parameters (buffers such as running_mean are not parameters)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


class _AlwaysEval:
    """Mixin for a frozen BatchNorm: `train()` leaves it in eval mode, so it normalizes with its running statistics."""

    def train(self, mode=True):
        return super().train(False)


class FrozenBatchNorm1d(_AlwaysEval, nn.BatchNorm1d):
    """An nn.BatchNorm1d after `freeze_batchnorm`: eval mode in every mode, gamma and beta without gradients."""


class FrozenBatchNorm2d(_AlwaysEval, nn.BatchNorm2d):
    """An nn.BatchNorm2d after `freeze_batchnorm`."""


class FrozenBatchNorm3d(_AlwaysEval, nn.BatchNorm3d):
    """An nn.BatchNorm3d after `freeze_batchnorm`."""


_FROZEN = {nn.BatchNorm1d: FrozenBatchNorm1d, nn.BatchNorm2d: FrozenBatchNorm2d, nn.BatchNorm3d: FrozenBatchNorm3d}


def freeze_batchnorm(model):
    """Freeze every BatchNorm layer of `model` in place and return the model; the other layers train as before.

    `requires_grad_(False)` alone stops gamma and beta, but in train mode the running statistics
    still move, and `model.train()` undoes an earlier `bn.eval()`. A frozen layer becomes a
    FrozenBatchNorm1d/2d/3d (same state_dict keys) whose `train()` keeps it in eval mode, so its
    gamma, beta and buffers stay fixed through later `model.train()` calls, training steps and
    `copy.deepcopy`. Other BatchNorm subclasses (e.g. SyncBatchNorm) raise TypeError.
    """
    for module in model.modules():
        if isinstance(module, _AlwaysEval):
            continue
        if type(module) in _FROZEN:
            module.__class__ = _FROZEN[type(module)]
            module.requires_grad_(False)
            module.eval()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f"freeze_batchnorm handles nn.BatchNorm1d/2d/3d, got {type(module).__name__}")
    return model
