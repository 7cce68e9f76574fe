"""Checkpoints and BatchNorm's buffers: what a parameters-only checkpoint leaves out.

`model.parameters()` / `named_parameters()` hold gamma and beta but not BatchNorm's buffers
(`running_mean`, `running_var`, `num_batches_tracked`); `state_dict()` holds both.
"""

import copy

import torch


def parameters_only(model):
    """{name: tensor} of `named_parameters()` (detached copies): the checkpoint that forgets the buffers."""
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def missing_buffers(model, checkpoint):
    """Sorted names of the buffers of `model`'s state_dict that `checkpoint` (a dict of tensors) lacks."""
    buffers = {name for name, _ in model.named_buffers()}
    return sorted(name for name in model.state_dict() if name in buffers and name not in checkpoint)


def weight_of_next_batch(layer, inputs, num_batches_tracked):
    """The weight a cumulative-average BatchNorm (`momentum=None`) gives the batch `inputs` (N, C) after
    `num_batches_tracked` batches: 1 / (num_batches_tracked + 1), measured on a copy of `layer`.

    running = (1 - w) * before + w * batch_mean, so w = (running - before) / (batch_mean - before), the median
    over units. A checkpoint that lost `num_batches_tracked` restarts the count at 0: the next batch gets weight 1.
    """
    layer = copy.deepcopy(layer).train()
    layer.momentum = None
    layer.num_batches_tracked.fill_(num_batches_tracked)
    before = layer.running_mean.clone()
    with torch.no_grad():
        layer(inputs)
    return ((layer.running_mean - before) / (inputs.mean(0) - before)).median().item()
