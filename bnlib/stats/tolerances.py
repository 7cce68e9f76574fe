"""How far two floating-point computations of the same network may differ: a tolerance from the magnitudes involved.

Two computations of one function cannot be expected to agree bitwise: a folded model multiplies the
BatchNorm scale into W before the sums, the original after them, and the order in which a matrix
product adds its terms changes with the thread count, the batch's size, the BLAS library and the
device. Checks in the notebooks compare with these tolerances instead of a fixed rtol/atol: one for
two computations of a network's outputs, one for a float64 replay of running statistics against the
float32 buffers PyTorch kept.
"""

import numpy as np
import torch
from torch import nn

from bnlib.stats.batchnorm import BATCHNORM_TYPES, batchnorm_affine
from bnlib.stats.folding import CONVOLUTIONS, IDENTITY_IN_EVAL, flat_layers
from bnlib.stats.running import replay_running_average

MAGNITUDE_PRESERVING = (nn.ReLU, nn.Tanh, *IDENTITY_IN_EVAL)  # |f(z)| <= |z| and 1-Lipschitz: errors do not grow
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)  # the max of |z| over a window bounds |max z|; 1-Lipschitz


def channel_view(values, like):
    """(C,) `values` shaped to broadcast along dimension 1 of `like` ((N, C) or (N, C, *spatial))."""
    return values.view(-1, *[1] * (like.dim() - 2))


@torch.no_grad()
def rounding_tolerance(model, inputs):
    """Per-output bound, of the shape of model(inputs), on how far two computations of the eval-mode model may differ.

    A floating-point sum of n terms is within n * u * (sum of |terms|) of the exact sum (Higham,
    Accuracy and Stability of Numerical Algorithms, 2002, section 3.1), u the unit roundoff of the
    model's dtype (2**-24 for float32, 2**-53 for float64). Pushing |inputs| through the nn.Sequential
    `model` with every weight, bias and BatchNorm term in absolute value gives the sum of |terms|
    behind each output, M; a computation is then within (the layers' term counts, summed) * u * M of
    the exact value, to first order, in any summation order, and two computations within twice that.
    It also holds for `fold_batchnorm(model)`, whose terms are no larger.
    """
    magnitude, terms = inputs.detach().double().abs(), 0
    for name, layer in flat_layers(model):
        if isinstance(layer, nn.Linear):
            magnitude = magnitude @ layer.weight.double().abs().T
            if layer.bias is not None:
                magnitude = magnitude + layer.bias.double().abs()
            terms += layer.in_features + 1
        elif isinstance(layer, CONVOLUTIONS):  # the convolution of |input| (padded as the layer pads) with |weight|
            weight, bias = layer.weight.double().abs(), None if layer.bias is None else layer.bias.double().abs()
            magnitude = layer._conv_forward(magnitude, weight, bias)
            terms += weight[0].numel() + 1  # in_channels / groups * kernel size products, and the bias
        elif isinstance(layer, BATCHNORM_TYPES):  # |scale| * (|z| + |running_mean|) + |beta|
            scale, _ = batchnorm_affine(layer)
            beta = channel_view(layer.bias.double().abs(), magnitude) if layer.affine else 0.0
            magnitude = channel_view(scale.abs(), magnitude) * (
                magnitude + channel_view(layer.running_mean.double().abs(), magnitude)) + beta
            terms += 4  # subtract, divide by the square root, multiply, add
        elif isinstance(layer, (nn.Flatten, *MAX_POOLS)):
            magnitude = layer(magnitude)
        elif not isinstance(layer, MAGNITUDE_PRESERVING):
            raise ValueError(f"rounding_tolerance cannot bound layer {name} ({type(layer).__name__})")
    unit_roundoff = torch.finfo(next(model.parameters()).dtype).eps / 2
    return 2 * terms * unit_roundoff * magnitude


def replay_tolerance(layer, momentum, dtype=torch.float32):
    """(running_mean, running_var) bounds, float64 tensors (steps + 1, units), on |replay - PyTorch's buffers|.

    `layer` is a LayerRecording (statistics in float64 of the very inputs the layer saw); PyTorch
    computed the same batch statistics in `dtype`. A batch mean of n values is within n * u * mean|x|
    <= n * u * sqrt(mean**2 + var) of exact, a batch variance within 2 * n * u * (mean**2 + var);
    the running average carries these errors with the weights of its rule, and every update (and the
    cast of the float64 replay) adds at most 4 * u * |running|.
    """
    unit_roundoff = torch.finfo(dtype).eps / 2
    mean, var = layer.mean.numpy(), layer.var.numpy()  # (steps, units)
    size = layer.batch_size.numpy().astype(np.float64)[:, None]  # (steps, 1)
    step_errors = (size * unit_roundoff * np.sqrt(mean**2 + var), 2 * size * unit_roundoff * (mean**2 + var))
    trajectories = (replay_running_average(mean, momentum, 0.0), replay_running_average(var, momentum, 1.0))
    bounds = []
    for step_error, running in zip(step_errors, trajectories, strict=True):
        bound = np.zeros_like(running)  # row 0: the initial buffers are exact
        for step in range(1, len(bound)):
            weight = 1.0 / step if momentum is None else momentum  # PyTorch's factor at this step
            bound[step] = (1 - weight) * bound[step - 1] + weight * step_error[step - 1]
            bound[step] += 4 * unit_roundoff * np.abs(running[step])
        bounds.append(torch.from_numpy(bound))
    return tuple(bounds)
