"""Noisy BatchNorm: a per-unit affine map from the stated distributions in train mode, their means in eval mode."""

import pytest
import scipy.stats
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.studies.noisy_batchnorm import (
    NoiseDistribution,
    RandomAffineNoise,
    add_noise_after_batchnorm,
    noise_replayed,
)

DRAWS, UNITS = 2_000, 50  # 100,000 draws of each of scale and shift


def draws(module, count=DRAWS):
    """(count, units) scales and shifts, read back from the module's output for inputs 0 and 1."""
    zeros_and_ones = torch.stack([torch.zeros(module.num_features), torch.ones(module.num_features)])
    outputs = torch.stack([module(zeros_and_ones) for _ in range(count)])  # (count, 2, units)
    return outputs[:, 1] - outputs[:, 0], outputs[:, 0]


def test_eval_mode_applies_the_expected_scale_and_shift():
    torch.manual_seed(0)
    model = make_mlp((20, 10), bn="before")
    model(torch.randn(64, 784))  # move the running statistics away from 0 and 1
    noisy = add_noise_after_batchnorm(model).eval()
    inputs = torch.randn(16, 784)
    expected = torch.nn.Sequential(*(nn.Sequential(module, _Affine(1.25, 0.5)) if isinstance(module, nn.BatchNorm1d)
                                     else module for module in model)).eval()  # U(0.5, 2) has mean 1.25
    torch.testing.assert_close(noisy(inputs), expected(inputs), rtol=0, atol=0)
    noise = RandomAffineNoise(10, NoiseDistribution(scale_low=1.0, scale_high=3.0, shift_mean=-2.0)).eval()
    torch.testing.assert_close(noise(inputs[:, :10]), inputs[:, :10] * 2.0 - 2.0, rtol=0, atol=0)
    assert torch.equal(noise(inputs[:, :10]), noise(inputs[:, :10]))  # nothing drawn in eval mode


class _Affine(nn.Module):
    def __init__(self, scale, shift):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, inputs):
        return inputs * self.scale + self.shift


def test_expected_scale_and_shift():
    distribution = NoiseDistribution(scale_low=0.5, scale_high=2.0, shift_mean=0.5, shift_std=1.0)
    assert (distribution.expected_scale, distribution.expected_shift) == (1.25, 0.5)
    scale, shift = draws(RandomAffineNoise(UNITS, distribution, seed=2))  # 100,000 draws of each
    assert scale.mean().item() == pytest.approx(1.25, abs=5 * 1.5 / 12**0.5 / scale.numel() ** 0.5)
    assert shift.mean().item() == pytest.approx(0.5, abs=5 / shift.numel() ** 0.5)
    assert "eval: scale 1.25, shift 0.5" in str(RandomAffineNoise(3, distribution))


def test_train_mode_applies_one_scale_and_shift_per_unit_to_every_row():
    noise = RandomAffineNoise(UNITS, seed=3)
    inputs = torch.randn(8, UNITS)
    outputs = noise(inputs)
    scale = (outputs[1] - outputs[0]) / (inputs[1] - inputs[0])  # (units,) from two rows
    shift = outputs[0] - scale * inputs[0]
    torch.testing.assert_close(outputs, inputs * scale + shift, rtol=1e-4, atol=1e-5)  # the same for all rows
    assert not torch.allclose(noise(inputs), outputs)  # drawn anew at the next train-mode forward


def test_train_mode_draws_from_the_stated_distributions():
    distribution = NoiseDistribution()
    scale, shift = draws(RandomAffineNoise(UNITS, distribution, seed=1))
    width = distribution.scale_high - distribution.scale_low
    assert scale.min() >= distribution.scale_low and scale.max() <= distribution.scale_high
    # Kolmogorov-Smirnov against the stated distributions; seeded, so the p-values are fixed numbers.
    assert scipy.stats.kstest(scale.flatten(), scipy.stats.uniform(distribution.scale_low, width).cdf).pvalue > 0.01
    normal = scipy.stats.norm(distribution.shift_mean, distribution.shift_std)
    assert scipy.stats.kstest(shift.flatten(), normal.cdf).pvalue > 0.01
    # Non-zero mean and non-unit variance, within 5 standard errors of the stated values.
    count = scale.numel()
    assert shift.mean().item() == pytest.approx(distribution.shift_mean, abs=5 * distribution.shift_std / count**0.5)
    assert scale.var().item() == pytest.approx(width**2 / 12, rel=0.02)


def test_noise_has_its_own_generator():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    RandomAffineNoise(5)(torch.zeros(2, 5))
    assert torch.equal(torch.rand(3), expected)  # the rest of training draws the same numbers
    first, second = (draws(RandomAffineNoise(5, seed=7), 3)[0] for _ in range(2))
    assert torch.equal(first, second)  # same seed, same noise


def test_noise_replayed_shows_the_next_draw_without_using_it():
    noisy = add_noise_after_batchnorm(make_mlp((20, 10), bn="before")).train()
    inputs = torch.randn(16, 784)
    with torch.no_grad(), noise_replayed(noisy):
        measured = noisy(inputs)
    with torch.no_grad():
        trained = noisy(inputs)  # the next "training step" draws the same noise
        following = noisy(inputs)
    torch.testing.assert_close(trained, measured, rtol=0, atol=0)
    assert not torch.allclose(following, trained)


def test_noise_goes_after_every_batchnorm():
    noisy = add_noise_after_batchnorm(make_mlp((20, 10), bn="before"))
    kinds = [type(module) for module in noisy]
    after = [kinds[index + 1] for index, kind in enumerate(kinds) if kind is nn.BatchNorm1d]
    assert after == [RandomAffineNoise, RandomAffineNoise]
    assert [module.num_features for module in noisy if isinstance(module, RandomAffineNoise)] == [20, 10]
    assert "Uniform(0.5, 2)" in str(noisy)  # the structure, part of the cache key, names the distributions


@pytest.mark.parametrize(
    ("arguments", "name"), [({"scale_low": 0}, "scale_low"), ({"scale_high": 0.1}, "scale_high"),
                            ({"shift_std": -1}, "shift_std"), ({"shift_mean": "a"}, "shift_mean")]
)
def test_bad_distributions_are_refused(arguments, name):
    with pytest.raises(ValueError, match=name):
        NoiseDistribution(**arguments)


def test_only_sequential_models():
    with pytest.raises(TypeError, match="nn.Sequential"):
        add_noise_after_batchnorm(nn.Linear(2, 2))
