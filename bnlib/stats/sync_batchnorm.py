"""Synchronized BatchNorm that runs on CPU processes: statistics over the global batch, every rank's shard together.

`nn.SyncBatchNorm` synchronizes GPU inputs only: in torch 2.14 DDP refuses it in a CPU model, and its
train-mode forward raises for CPU inputs inside a process group. `AllReduceBatchNorm1d` computes the
same thing with `torch.distributed.all_reduce`, which the gloo backend runs on the CPU: each rank sums
count, sum and sum of squares of its shard per channel, one all-reduce adds them up over the ranks, and
every rank normalizes with the global mean and biased variance. Its backward pass all-reduces the two
sums the input gradient needs. Outside a process group it is plain BatchNorm.

The running statistics follow PyTorch's rule, `running = (1 - momentum) * running + momentum * batch`, with
the global batch's unbiased variance (`momentum=None`: a cumulative average), as `nn.SyncBatchNorm` does.
"""

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def all_reduce_sum(tensor):
    """`tensor` summed over every rank of the default process group, in place; unchanged outside a group."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def _channel_shape(input):  # broadcast a (C,) vector over (N, C, *)
    return (1, -1) + (1,) * (input.dim() - 2)


class AllReduceNormalization(torch.autograd.Function):
    """BatchNorm's train-mode normalization with the statistics of every rank's input: (output, mean, biased var,
    global count), the statistics (C,) and the count for the running update.

    As in `nn.SyncBatchNorm`, the input gradient is that of the sum of every rank's loss, and the gradients of
    gamma and beta are this rank's own: DDP averages parameter gradients over the ranks, which makes both the
    gradient of the mean loss over the ranks.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, eps):
        values = input.transpose(0, 1).reshape(input.shape[1], -1).double()  # (N, C, *) -> (C, values)
        # float64 sums: var = E[x²] - mean² cancels badly in float32 when the mean is large
        count = torch.full_like(values[:, 0], values.shape[1])
        totals = all_reduce_sum(torch.stack([count, values.sum(1), values.square().sum(1)]))  # (3, C), every rank
        count, mean = totals[0], totals[1] / totals[0]
        var = (totals[2] / count - mean.square()).clamp_min(0)  # biased: what the batch is normalized with
        shape = _channel_shape(input)
        invstd = (var + eps).rsqrt().to(input.dtype)
        normalized = (input - mean.to(input.dtype).view(shape)) * invstd.view(shape)
        ctx.save_for_backward(normalized, weight, invstd, count)
        output = normalized if weight is None else normalized * weight.view(shape) + bias.view(shape)
        ctx.mark_non_differentiable(mean, var, count)
        return output, mean.to(input.dtype), var.to(input.dtype), count

    @staticmethod
    def backward(ctx, grad_output, _mean, _var, _count):
        normalized, weight, invstd, count = ctx.saved_tensors
        shape = _channel_shape(grad_output)
        dims = [0, *range(2, grad_output.dim())]
        sum_dy, sum_dy_normalized = grad_output.sum(dims), (grad_output * normalized).sum(dims)  # (C,) this rank's
        global_sums = all_reduce_sum(torch.stack([sum_dy, sum_dy_normalized]).double())  # (2, C), every rank
        mean_dy, mean_dy_normalized = (global_sums / count).to(grad_output.dtype)
        scale = invstd if weight is None else invstd * weight
        centered = grad_output - mean_dy.view(shape) - normalized * mean_dy_normalized.view(shape)
        grad_input = centered * scale.view(shape)
        if weight is None:
            return grad_input, None, None, None
        return grad_input, sum_dy_normalized, sum_dy, None


class AllReduceBatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d whose train-mode statistics cover every rank's batch (all-reduced); eval mode is unchanged."""

    def forward(self, input):
        self._check_input_dim(input)
        if not self.training and self.track_running_stats:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps)  # fmt: skip
        output, mean, var, count = AllReduceNormalization.apply(input, self.weight, self.bias, self.eps)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, count[0])
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean, var, count):
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - momentum).add_(momentum * mean)
        self.running_var.mul_(1 - momentum).add_(momentum * var * (count / (count - 1)).to(var.dtype))


def convert_to_all_reduce_batchnorm(model):
    """A copy of `model` with every nn.BatchNorm1d replaced by an AllReduceBatchNorm1d holding the same parameters
    and buffers: what `nn.SyncBatchNorm.convert_sync_batchnorm` does, for layers that also synchronize on the CPU."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = AllReduceBatchNorm1d  # the same attributes, parameters and buffers; its own forward
    return model
