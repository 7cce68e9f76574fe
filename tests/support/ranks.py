"""Workers for the process-group tests: importable functions, since the spawned ranks import their worker."""

import psutil
import torch
import torch.distributed as dist

from bnlib.stats.sync_batchnorm import AllReduceBatchNorm1d


def report_rank(rank, world_size):
    """(rank, world size, the sum of the ranks over the group): what a working group answers."""
    total = torch.tensor([float(rank)])
    dist.all_reduce(total)
    return {"rank": rank, "world_size": world_size, "sum_of_ranks": total.item()}


def report_own_memory(rank, world_size, *, tensor):
    """The rank's own memory in MB (unique set size: pages no other process maps) and the sum of `tensor`."""
    return {"own_mb": psutil.Process().memory_full_info().uss / 2**20, "sum": tensor.sum().item()}


def raise_on_rank(rank, world_size, failing_rank):
    """Rank `failing_rank` raises ValueError; the others wait in an all-reduce that never completes."""
    if rank == failing_rank:
        raise ValueError(f"rank {rank} was asked to fail\nsecond line")
    dist.all_reduce(torch.zeros(1))
    return {}


def all_reduce_batchnorm_step(rank, world_size, *, inputs, output_weights, sizes, momentum):
    """One train-mode forward and backward of AllReduceBatchNorm1d on this rank's chunk of `inputs` (chunk sizes
    `sizes`), with the loss sum(output * output_weights): output, input gradient, buffers, parameter gradients."""
    layer = AllReduceBatchNorm1d(inputs.shape[1], momentum=momentum)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 1.5, inputs.shape[1]))
        layer.bias.copy_(torch.linspace(-1.0, 1.0, inputs.shape[1]))
    chunk = inputs.split(sizes)[rank].clone().requires_grad_(True)
    output = layer.train()(chunk)
    (output * output_weights.split(sizes)[rank]).sum().backward()
    return {"output": output.detach(), "input_grad": chunk.grad, "running_mean": layer.running_mean,
            "running_var": layer.running_var, "weight_grad": layer.weight.grad, "bias_grad": layer.bias.grad}
