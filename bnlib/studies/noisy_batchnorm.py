"""Noisy BatchNorm, a variant of Santurkar et al. (2018)'s: a random per-unit scale and shift after each BatchNorm.

Santurkar et al. perturb each activation of each example with i.i.d. noise of non-zero mean and
non-unit variance that changes at every step. Here one scale and one shift are drawn per unit and
step and shared by every example of the batch: the whole distribution that the next layer sees
moves from step to step, on purpose, so that BatchNorm no longer keeps it still. The noise is drawn
anew at every train-mode forward pass (one per training step); eval mode applies its expected
scale and shift, as dropout's eval mode keeps its expected value, so that eval mode evaluates a
network like the one that was trained.
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

    # Chosen so that, in notebook 08's full-mode run, the tracked input moved at least as far as without BatchNorm,
    # both in its own units and relative to its spread.
    scale_low: float = 0.5
    scale_high: float = 2.0
    shift_mean: float = 0.5  # a non-zero mean: the unit's mean moves away from BatchNorm's beta
    shift_std: float = 1.0

    def __post_init__(self):
        check_number("scale_low", self.scale_low, 0, None, low_open=True)
        check_number("scale_high", self.scale_high, self.scale_low, None)
        check_number("shift_mean", self.shift_mean)
        check_number("shift_std", self.shift_std, 0, None)

    @property
    def expected_scale(self):
        return (self.scale_low + self.scale_high) / 2

    @property
    def expected_shift(self):
        return self.shift_mean

    def describe(self):
        """The distributions in words, for the notebook."""
        return (
            f"scale ~ Uniform({self.scale_low:g}, {self.scale_high:g}), "
            f"shift ~ Normal(mean {self.shift_mean:g}, std {self.shift_std:g})"
        )

    def to_dict(self):
        return asdict(self)


class RandomAffineNoise(nn.Module):
    """y = scale * x + shift with a fresh (units,) scale and shift at every train-mode forward; in eval mode the
    expected scale and shift.

    The scale and shift are the same for every example of a batch (Santurkar et al. draw them per
    example), so the whole distribution of each unit moves: its mean by the shift, its spread by the
    scale. Draws come from the module's own generator (`seed`), so they do not change the rest of
    training's random numbers.
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
        if not self.training:  # not off: the next layer was trained on noisy inputs, so keep their expected value
            return inputs * self.distribution.expected_scale + self.distribution.expected_shift
        scale, shift = (tensor.to(inputs.device) for tensor in self.draw())
        return inputs * scale + shift

    def extra_repr(self):
        noise = self.distribution
        return (f"{self.num_features}, {noise.describe()}, "
                f"eval: scale {noise.expected_scale:g}, shift {noise.expected_shift:g}")


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
