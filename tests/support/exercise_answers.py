"""Reference answers of the BatchNorm exercises, written out once for the tests of the checks (never shipped)."""

import torch
from torch import nn


def train_reference(z, gamma, beta, eps):
    mean = z.mean(dim=0)  # (N, C) -> (C,)
    var = z.var(dim=0, unbiased=False)
    return gamma * (z - mean) / torch.sqrt(var + eps) + beta


def backward_reference(dout, z, gamma, eps):
    n = z.shape[0]
    mean, var = z.mean(0), z.var(0, unbiased=False)
    inv_std = 1.0 / torch.sqrt(var + eps)
    z_hat = (z - mean) * inv_std
    dgamma, dbeta = (dout * z_hat).sum(0), dout.sum(0)
    dz_hat = dout * gamma
    dz = inv_std / n * (n * dz_hat - dz_hat.sum(0) - z_hat * (dz_hat * z_hat).sum(0))
    return dz, dgamma, dbeta


def fold_reference(linear, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
    folded = nn.Linear(linear.in_features, linear.out_features, dtype=linear.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(scale[:, None] * linear.weight)
        folded.bias.copy_(scale * (bias - bn.running_mean) + bn.bias)
    return folded


def running_by_layer(running_mean, running_var, batch, momentum, step):
    """The running update as PyTorch's own layer does it: BatchNorm1d for (N, C) and (N, C, L), BatchNorm2d for
    (N, C, H, W), its buffers set to the given ones and `step - 1` batches already tracked."""
    layer_class = nn.BatchNorm2d if batch.dim() == 4 else nn.BatchNorm1d
    layer = layer_class(batch.shape[1], momentum=momentum, dtype=batch.dtype)
    layer.running_mean.copy_(running_mean)
    layer.running_var.copy_(running_var)
    layer.num_batches_tracked.fill_(step - 1)
    layer(batch)
    return layer.running_mean, layer.running_var
