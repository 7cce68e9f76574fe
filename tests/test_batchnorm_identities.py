"""Pins the PyTorch behaviour the lesson relies on: what notebooks 02 and 05 state about `nn.BatchNorm1d/2d` must stay
true in the installed PyTorch.

- train mode normalizes with the batch mean and the biased batch variance, then scales by gamma and shifts by beta
  ((N, C) and (N, C, L) inputs);
- one step updates `running = (1 - momentum) * running + momentum * batch`, with the unbiased variance, from 0 and 1;
- eval mode normalizes with `running_mean` and `running_var`;
- a Linear bias before BatchNorm changes nothing in train mode (its gradient is zero) but moves the running mean
  by b * (1 - (1 - momentum) ** steps);
- one example trains when each channel has several values (N x L or N x H x W) and is an error for (1, C) in
  train mode only.
One test also checks bnlib: the lecture model from `make_mlp(bias=False)` matches the one with biases in train mode.

Tolerances: rtol = atol = 1e-5, float32 precision for values of order 1 (bitwise equality is not
expected: PyTorch's kernels sum in a different order).
"""

import pytest
import torch
from torch import nn

from bnlib.models import count_parameters, make_mlp

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def batchnorm_by_hand(inputs, weight, bias, eps):
    """Train-mode BatchNorm: (x - batch mean) / sqrt(biased batch var + eps) * gamma + beta; (N, C) or (N, C, L)."""
    dims = (0,) if inputs.dim() == 2 else (0, 2)  # every axis but the channel axis C
    shape = (1, -1) if inputs.dim() == 2 else (1, -1, 1)
    mean = inputs.mean(dim=dims, keepdim=True)
    var = inputs.var(dim=dims, unbiased=False, keepdim=True)
    return (inputs - mean) / torch.sqrt(var + eps) * weight.view(shape) + bias.view(shape)


def random_batchnorm(channels, generator):
    layer = nn.BatchNorm1d(channels)
    with torch.no_grad():  # gamma and beta away from their initial 1 and 0, so a mix-up would show
        layer.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
        layer.bias.copy_(torch.randn(channels, generator=generator))
    return layer


@pytest.mark.parametrize("shape", [(32, 6), (16, 6, 5)], ids=["N,C", "N,C,L"])
def test_batchnorm_forward_by_hand_equals_the_module(shape):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(shape, generator=generator) * 3 + 2
    layer = random_batchnorm(shape[1], generator).train()
    expected = layer(inputs)
    torch.testing.assert_close(batchnorm_by_hand(inputs, layer.weight, layer.bias, layer.eps), expected, **TOLERANCE)


def test_running_statistics_after_one_step_follow_pytorchs_rule():
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(32, 6, generator=generator) * 3 + 2
    layer = random_batchnorm(6, generator).train()
    layer(inputs)
    momentum = layer.momentum  # running = (1 - momentum) * running + momentum * batch, from mean 0 and var 1
    torch.testing.assert_close(layer.running_mean, momentum * inputs.mean(dim=0), **TOLERANCE)
    torch.testing.assert_close(layer.running_var, (1 - momentum) + momentum * inputs.var(dim=0), **TOLERANCE)


def test_eval_mode_uses_the_running_statistics():
    generator = torch.Generator().manual_seed(2)
    layer = random_batchnorm(6, generator)
    with torch.no_grad():
        layer.running_mean.copy_(torch.randn(6, generator=generator))
        layer.running_var.copy_(torch.rand(6, generator=generator) + 0.5)
    inputs = torch.randn(4, 6, generator=generator)
    by_hand = (inputs - layer.running_mean) / torch.sqrt(layer.running_var + layer.eps) * layer.weight + layer.bias
    torch.testing.assert_close(layer.eval()(inputs), by_hand, **TOLERANCE)


def linear_pair(generator, bias_scale=1.0):
    """Two Linear(20, 6) with the same weights; only the first has a (large, nonzero) bias."""
    with_bias, without_bias = nn.Linear(20, 6), nn.Linear(20, 6, bias=False)
    with torch.no_grad():
        with_bias.weight.copy_(torch.randn(6, 20, generator=generator) / 20**0.5)
        without_bias.weight.copy_(with_bias.weight)
        with_bias.bias.copy_(torch.randn(6, generator=generator) * bias_scale)
    return with_bias, without_bias


def test_bias_before_batchnorm_changes_nothing_in_train_mode():
    generator = torch.Generator().manual_seed(3)
    with_bias, without_bias = linear_pair(generator)
    inputs = torch.randn(64, 20, generator=generator)
    output_with = nn.BatchNorm1d(6)(with_bias(inputs))
    output_without = nn.BatchNorm1d(6)(without_bias(inputs))
    torch.testing.assert_close(output_with, output_without, **TOLERANCE)

    (output_with * torch.randn(output_with.shape, generator=generator)).sum().backward()
    # Zero up to float error (a sum of N terms that cancel), tiny beside the weights' gradient.
    assert with_bias.bias.grad.abs().max() < 1e-4 * with_bias.weight.grad.abs().max()
    assert count_parameters(with_bias) - count_parameters(without_bias) == 6


def test_the_bias_moves_the_running_mean_by_b_times_one_minus_decay():
    generator = torch.Generator().manual_seed(4)
    with_bias, without_bias = linear_pair(generator)
    norm_with, norm_without = nn.BatchNorm1d(6), nn.BatchNorm1d(6)
    for step in range(1, 11):
        inputs = torch.randn(64, 20, generator=generator)
        norm_with(with_bias(inputs)), norm_without(without_bias(inputs))
        expected = with_bias.bias * (1 - (1 - norm_with.momentum) ** step)
        torch.testing.assert_close(norm_with.running_mean - norm_without.running_mean, expected.detach(), **TOLERANCE)
        torch.testing.assert_close(norm_with.running_var, norm_without.running_var, **TOLERANCE)


def test_the_lecture_model_with_and_without_bias_agree_in_train_mode():
    torch.manual_seed(5)
    with_bias = make_mlp(bn="before", bias=True)
    without_bias = make_mlp(bn="before", bias=False)
    result = without_bias.load_state_dict(with_bias.state_dict(), strict=False)
    assert sorted(result.unexpected_keys) == ["1.bias", "4.bias"] and result.missing_keys == []
    inputs = torch.rand(32, 1, 28, 28)
    torch.testing.assert_close(with_bias.train()(inputs), without_bias.train()(inputs), **TOLERANCE)
    assert count_parameters(with_bias) - count_parameters(without_bias) == 75 + 45


@pytest.mark.parametrize(
    ("layer", "shape"),
    [(nn.BatchNorm1d(4), (1, 4, 20)), (nn.BatchNorm2d(4), (1, 4, 5, 5))],
    ids=["BatchNorm1d (1, C, L)", "BatchNorm2d (1, C, H, W)"],
)
def test_one_example_trains_when_each_channel_has_several_values(layer, shape):
    inputs = torch.randn(shape, generator=torch.Generator().manual_seed(6)) * 3 + 2
    output = layer.train()(inputs)  # statistics over N x L (or N x H x W) values per channel
    dims = tuple(dim for dim in range(len(shape)) if dim != 1)
    torch.testing.assert_close(output.mean(dim=dims), torch.zeros(4), **TOLERANCE)
    torch.testing.assert_close(layer.running_var, 0.9 + 0.1 * inputs.var(dim=dims), **TOLERANCE)


def test_one_example_of_shape_n_c_is_an_error_in_train_mode_only():
    layer = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        layer.train()(torch.randn(1, 4))
    assert layer.eval()(torch.randn(1, 4)).shape == (1, 4)
