"""Noisy BatchNorm (after Santurkar et al. 2018): a random per-unit scale and shift after each BatchNorm.

The noise makes the distribution that the next layer sees move from step to step on purpose, so
that BatchNorm no longer keeps it still; it is drawn anew at every train-mode forward pass (one
per training step) and is off in eval mode.
"""

import contextlib
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bnlib.checks import check_integer, check_number
from bnlib.models import make_mlp


@dataclass(frozen=True)
class NoiseDistribution:
    """Per unit and step: scale ~ U(scale_low, scale_high), shift ~ N(shift_mean, shift_std²)."""

    # Strong enough that the tracked input of notebook 08 moves more than without BatchNorm (about twice as far).
    scale_low: float = 0.5
    scale_high: float = 2.0
    shift_mean: float = 0.5  # a non-zero mean: the unit's mean moves away from BatchNorm's beta
    shift_std: float = 1.0

    def __post_init__(self):
        check_number("scale_low", self.scale_low, 0, None, low_open=True)
        check_number("scale_high", self.scale_high, self.scale_low, None)
        check_number("shift_mean", self.shift_mean)
        check_number("shift_std", self.shift_std, 0, None)

    def describe(self):
        """The distributions in words, for the notebook."""
        return (
            f"scale ~ Uniform({self.scale_low:g}, {self.scale_high:g}), "
            f"shift ~ Normal(mean {self.shift_mean:g}, std {self.shift_std:g})"
        )

    def to_dict(self):
        return asdict(self)


class RandomAffineNoise(nn.Module):
    """y = scale * x + shift with a fresh (units,) scale and shift at every train-mode forward; identity in eval.

    The scale and shift are the same for every example of a batch, so the whole distribution of each
    unit moves: its mean by the shift, its spread by the scale. Draws come from the module's own
    generator (`seed`), so they do not change the rest of training's random numbers.
    """

    def __init__(self, num_features, distribution=None, seed=0):
        super().__init__()
        self.num_features = check_integer("num_features", num_features, minimum=1)
        self.distribution = distribution or NoiseDistribution()
        self.generator = torch.Generator().manual_seed(check_integer("seed", seed))

    def draw(self):
        """One (scale, shift) pair of (units,) tensors from the distribution."""
        noise = self.distribution
        uniform = torch.rand(self.num_features, generator=self.generator)
        normal = torch.randn(self.num_features, generator=self.generator)
        scale = noise.scale_low + (noise.scale_high - noise.scale_low) * uniform
        return scale, noise.shift_mean + noise.shift_std * normal

    def forward(self, inputs):  # (N, units) -> (N, units)
        if not self.training:
            return inputs
        scale, shift = (tensor.to(inputs.device) for tensor in self.draw())
        return inputs * scale + shift

    def extra_repr(self):
        return f"{self.num_features}, {self.distribution.describe()}"


def add_noise_after_batchnorm(model, distribution=None, seed=0):
    """A new nn.Sequential with a RandomAffineNoise after every BatchNorm1d of `model` (seed: `seed` + position)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    layers = []
    for module in model:
        layers.append(module)
        if isinstance(module, nn.BatchNorm1d):
            layers.append(RandomAffineNoise(module.num_features, distribution, seed + len(layers)))
    return nn.Sequential(*layers)


def make_noisy_mlp(noise, noise_seed=0, **mlp_options):
    """`make_mlp(**mlp_options)` with a RandomAffineNoise after every BatchNorm1d (`add_noise_after_batchnorm`).

    `noise` holds a NoiseDistribution's fields (`to_dict()`), so that a cache key can hold the arguments.
    """
    return add_noise_after_batchnorm(make_mlp(**mlp_options), NoiseDistribution(**noise), noise_seed)


@contextlib.contextmanager
def noise_replayed(model):
    """Inside the block, noise layers draw what the next training step will draw: their generators are reset after.

    A measurement in train mode then sees the network exactly as that step does, and leaves training unchanged.
    """
    layers = [module for module in model.modules() if isinstance(module, RandomAffineNoise)]
    states = [layer.generator.get_state() for layer in layers]
    try:
        yield model
    finally:
        for layer, state in zip(layers, states, strict=True):
            layer.generator.set_state(state)
