"""The lecture's multilayer perceptrons: plain, with dropout, with a normalization layer before or after ReLU."""

import inspect

import torch
from torch import nn

from bnlib.checks import check_choice, check_integer, check_number

BN_PLACEMENTS = (None, "before", "after")
NORMS = ("batch", "layer", "group")
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _check_hidden(hidden):
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__") or len(hidden) == 0:
        raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {hidden!r}")
    return [check_integer(f"hidden[{index}]", size, minimum=1) for index, size in enumerate(hidden)]


def _checked(arguments):
    """`make_mlp`'s arguments checked and normalized (ints, floats, lists), in signature order."""
    checked = {
        "hidden": _check_hidden(arguments["hidden"]),
        "bn": check_choice("bn", arguments["bn"], BN_PLACEMENTS),
        "norm": check_choice("norm", arguments["norm"], NORMS),
        "groups": check_integer("groups", arguments["groups"], minimum=1),
        "bias": check_choice("bias", arguments["bias"], (None, True, False)),
        "dropout": check_number("dropout", arguments["dropout"], 0, 1, high_open=True),
        "activation": check_choice("activation", arguments["activation"], tuple(ACTIVATIONS)),
        "in_features": check_integer("in_features", arguments["in_features"], minimum=1),
        "num_classes": check_integer("num_classes", arguments["num_classes"], minimum=1),
        "init_std": None
        if arguments["init_std"] is None
        else check_number("init_std", arguments["init_std"], 0, None, low_open=True),
        "zero_bias": check_choice("zero_bias", arguments["zero_bias"], (True, False)),
    }
    if checked["bn"] is not None and checked["norm"] == "group":
        uneven = [size for size in checked["hidden"] if size % checked["groups"]]
        if uneven:
            raise ValueError(f"groups must divide every hidden width, got groups={checked['groups']} for {uneven}")
    return checked


def _norm_layer(norm, width, groups):
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.GroupNorm(groups, width)


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
    if bias is None:  # drop it exactly where a BatchNorm directly follows the Linear
        bias = not (bn == "before" and norm == "batch")
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


def mlp_arguments(**options):
    """Every `make_mlp` argument with its default filled in, checked, JSON-ready (lists, floats): a model's cache key.

    `bnlib.runs.mlp_spec` builds and keys every MLP run from these.
    An unknown option raises TypeError.
    """
    bound = inspect.signature(make_mlp).bind(**options)
    bound.apply_defaults()
    return _checked(bound.arguments)


def linear_bias(linear):
    """The bias of the nn.Linear `linear`, or zeros (out_features,) like its weight where it has none: the same map."""
    if linear.bias is not None:
        return linear.bias
    return torch.zeros(linear.out_features, dtype=linear.weight.dtype, device=linear.weight.device)


def first_linear(model):
    """The first nn.Linear of `model`, in module order (an MLP's first hidden layer)."""
    return next(module for module in model.modules() if isinstance(module, nn.Linear))


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
