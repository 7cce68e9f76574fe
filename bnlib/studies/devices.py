"""Data-parallel BatchNorm simulated on one device: each of k chunks of a batch is normalized on its own.

Under DistributedDataParallel every device runs BatchNorm on its own share of the batch, unless the
layers are converted with `nn.SyncBatchNorm.convert_sync_batchnorm`, which computes the statistics
over the whole batch (across devices). DDP's default `broadcast_buffers=True` copies rank 0's
buffers to every device before each forward pass, so the running statistics that survive are
those of rank 0's chunks; the simulation keeps those.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bnlib.checks import check_integer


class DeviceSplitBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that, in train mode, normalizes each of `devices` chunks of the batch with the chunk's statistics.

    The chunks are `input.tensor_split(devices)` (the first ones one example larger when the batch
    does not divide), as DDP would scatter them; the running statistics follow the first chunk
    (rank 0). Eval mode, and `devices=1`, are plain BatchNorm1d.
    """

    def __init__(self, num_features, devices, **options):
        super().__init__(num_features, **options)
        self.devices = check_integer("devices", devices, minimum=1)

    def forward(self, input):
        if not self.training or self.devices == 1:
            return super().forward(input)
        if len(input) < self.devices:
            raise ValueError(f"a batch of {len(input)} cannot be split over {self.devices} devices")
        first, *others = input.tensor_split(self.devices)
        outputs = [super().forward(first)]  # rank 0: normalizes and updates the running statistics
        for chunk in others:  # the other devices: normalize with their own statistics; their buffers are discarded
            outputs.append(F.batch_norm(chunk, None, None, self.weight, self.bias, True, 0.0, self.eps))
        return torch.cat(outputs)

    def extra_repr(self):
        return f"{super().extra_repr()}, devices={self.devices}"


def split_batchnorm(model, devices):
    """A copy of `model` with every nn.BatchNorm1d replaced by a DeviceSplitBatchNorm1d over `devices` chunks.

    Parameters and buffers are copied, like `nn.SyncBatchNorm.convert_sync_batchnorm` does.
    """
    check_integer("devices", devices, minimum=1)
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.BatchNorm1d:
                parent.add_module(name, _split_copy(child, devices))
    return model


def _split_copy(batchnorm, devices):
    split = DeviceSplitBatchNorm1d(
        batchnorm.num_features,
        devices,
        eps=batchnorm.eps,
        momentum=batchnorm.momentum,
        affine=batchnorm.affine,
        track_running_stats=batchnorm.track_running_stats,
    )
    split.load_state_dict(batchnorm.state_dict())
    split.train(batchnorm.training)
    tensors = [*batchnorm.parameters(), *batchnorm.buffers()]
    return split.to(tensors[0].device) if tensors else split
