"""The lecture's multilayer perceptrons: plain, with dropout, and with BatchNorm1d before or after the activation."""

from torch import nn

BN_PLACEMENTS = (None, "before", "after")
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _check_options(hidden, bn, dropout, activation):
    if bn not in BN_PLACEMENTS:
        raise ValueError(f"bn must be one of {BN_PLACEMENTS}, got {bn!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if not hidden or not all(isinstance(size, int) and size > 0 for size in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {hidden!r}")


def make_mlp(hidden=(75, 45), *, bn=None, bias=None, dropout=0.0, activation="relu", in_features=784, num_classes=10):
    """An nn.Sequential: Flatten, then per hidden layer Linear, BatchNorm1d (bn="before"/"after"), activation, Dropout.

    `bias=None` turns the Linear bias off exactly when a BatchNorm directly follows it (its beta
    makes the bias redundant); True/False force it. Dropout comes last in each block.
    """
    _check_options(tuple(hidden), bn, dropout, activation)
    layers = [nn.Flatten()]
    width = in_features
    for size in hidden:
        layers.append(nn.Linear(width, size, bias=(bn != "before") if bias is None else bias))
        if bn == "before":
            layers.append(nn.BatchNorm1d(size))
        layers.append(ACTIVATIONS[activation]())
        if bn == "after":
            layers.append(nn.BatchNorm1d(size))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def count_parameters(model):
    """Number of trainable parameters (buffers such as running_mean are not parameters)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
