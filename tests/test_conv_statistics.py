"""Notebook 09, section 1: BatchNorm2d by hand (per-channel statistics over (N, H, W)) against nn.BatchNorm2d, its
running statistics with the unbiased count N*H*W - 1, and what per-position statistics break."""

import pytest
import torch
from torch import nn

from bnlib.studies.conv_statistics import PER_CHANNEL, PER_POSITION, batch_statistics, blown_up, normalized, shift_gap


def features(seed=0, shape=(6, 3, 5, 7)):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64) * 3 + 2


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_by_hand_equals_the_layer_in_train_mode_with_its_running_statistics(momentum):
    x = features()
    layer = nn.BatchNorm2d(3, momentum=momentum).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -2.0, 1.5]))
        layer.bias.copy_(torch.tensor([1.0, 0.0, -3.0]))
    output = layer.train()(x)
    mean, var = batch_statistics(x, PER_CHANNEL)  # (1, C, 1, 1): biased variance
    by_hand = normalized(x, (mean, var), layer.eps) * layer.weight[:, None, None] + layer.bias[:, None, None]
    torch.testing.assert_close(output, by_hand, rtol=1e-12, atol=1e-12)  # float64: rounding only
    count = x.numel() // x.shape[1]  # N * H * W = 210 values per channel
    unbiased = var.flatten() * count / (count - 1)
    factor = 1.0 if momentum is None else momentum  # one step from running_mean = 0, running_var = 1
    torch.testing.assert_close(layer.running_mean, factor * mean.flatten(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.running_var, (1 - factor) + factor * unbiased, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(layer.running_var, (1 - factor) + factor * var.flatten(), rtol=1e-6, atol=0)


def test_statistics_have_one_entry_per_channel_or_per_position():
    x = features()
    assert [tensor.shape for tensor in batch_statistics(x, PER_CHANNEL)] == [(1, 3, 1, 1)] * 2
    assert [tensor.shape for tensor in batch_statistics(x, PER_POSITION)] == [(1, 3, 5, 7)] * 2
    torch.testing.assert_close(batch_statistics(x, PER_POSITION)[1][0], x.var(dim=0, unbiased=False))


def test_per_channel_normalization_commutes_with_a_shift_and_per_position_does_not():
    x = features()
    assert shift_gap(x, batch_statistics(x, PER_CHANNEL), 1e-5, 2) == 0  # the same elementwise map at every position
    assert shift_gap(x, batch_statistics(x, PER_POSITION), 1e-5, 2) > 0.1
    assert shift_gap(x, batch_statistics(x, PER_POSITION), 1e-5, 7) < 1e-12  # a full turn along W: nothing moved


def test_a_position_that_never_varies_blows_up_with_per_position_statistics():
    reference = features()
    reference[:, :, 0, :] = 0.0  # an empty border row, as MNIST's
    probe = features(seed=1)
    probe[:, :, 0, :] = 0.01  # a faint value where the batch had none
    quiet, per_position, per_channel = blown_up(probe, reference, eps=1e-5, threshold=1e-6)
    assert quiet == pytest.approx(1 / 5)  # one row of five
    assert per_position == pytest.approx(0.01 / 1e-5**0.5)  # divided by sqrt(0 + eps)
    mean, var = batch_statistics(reference, PER_CHANNEL)
    assert per_channel == pytest.approx(((0.01 - mean) / (var + 1e-5).sqrt()).abs().max().item())
    assert blown_up(probe, features(seed=2), eps=1e-5, threshold=1e-6) == (0.0, 0.0, 0.0)
