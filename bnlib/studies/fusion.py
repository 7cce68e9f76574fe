"""Notebook 09, section 3: BatchNorm2d fused into the convolution before it, by PyTorch and by `fold_batchnorm`,
and how long a batch takes before and after."""

import copy
import time

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bnlib.checks import check_integer


def fuse_with_pytorch(model):
    """A copy of the eval-mode nn.Sequential `model` with every (Conv2d, BatchNorm2d) pair fused by PyTorch's
    `fuse_conv_bn_eval` and the BatchNorm replaced by nn.Identity (PyTorch asserts eval mode)."""
    fused = copy.deepcopy(model)
    for index, layer in enumerate(model):
        if isinstance(layer, nn.BatchNorm2d) and index > 0 and isinstance(model[index - 1], nn.Conv2d):
            fused[index - 1] = fuse_conv_bn_eval(fused[index - 1], fused[index])
            fused[index] = nn.Identity()
    return fused


@torch.no_grad()
def seconds_per_batch(model, images, repeats=20):
    """The shortest of `repeats` timings of model(images), in seconds, after one warm-up call (the least noisy)."""
    check_integer("repeats", repeats, minimum=1)
    model(images)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(images)
        timings.append(time.perf_counter() - start)
    return min(timings)
