"""Whole-training-set (population) statistics of each BatchNorm layer's input, and the `nn` recipe `recalibrate`.

The original BatchNorm paper (Ioffe and Szegedy, 2015) uses the population statistics for inference;
the running averages kept during training approximate them.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnlib.runtime import model_device
from bnlib.stats.batchnorm import batchnorm_layers, swapped_running_stats, unit_view
from bnlib.train import evaluation_mode


@dataclass(frozen=True)
class PopulationStats:
    """Whole-data-set statistics of one BatchNorm layer's input, each of shape (units,), float64."""

    mean: torch.Tensor
    var: torch.Tensor  # unbiased, the convention of running_var
    var_biased: torch.Tensor
    count: int  # values per unit the statistics are over


class _MomentsAccumulator:
    """Count, mean and sum of squared deviations per unit, merged batch by batch (Chan et al., 1979)."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values):  # (values, C)
        values = values.double()
        count, mean = len(values), values.mean(0)
        m2 = ((values - mean) ** 2).sum(0)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / total
        self.count = total

    def result(self):
        """The accumulated moments as PopulationStats on the CPU."""
        return PopulationStats(
            mean=self.mean.cpu(),
            var=(self.m2 / (self.count - 1)).cpu(),
            var_biased=(self.m2 / self.count).cpu(),
            count=self.count,
        )


def _input_moments(model, module, loader, device):
    """The moments of `module`'s input over all of `loader` (one eval-mode pass of the whole model)."""
    accumulator = _MomentsAccumulator()
    handle = module.register_forward_hook(lambda _module, inputs, _output: accumulator.add(unit_view(inputs[0])))
    try:
        with torch.no_grad():
            for images, _ in loader:
                model(images.to(device))
    finally:
        handle.remove()
    return accumulator


@torch.no_grad()
def _population_layer_by_layer(model, loader, device):
    """population_stats for an nn.Sequential whose BatchNorms are its children: one pass, child by child."""
    activations = [images.to(device) for images, _ in loader]  # one child's output for all of loader at a time
    names = [name for name, _ in batchnorm_layers(model)]
    stats = {}
    with evaluation_mode(model):  # dropout off; every module's mode restored afterwards
        for name, child in model.named_children():
            if name in names:
                moments = _MomentsAccumulator()
                for batch in activations:
                    moments.add(unit_view(batch))
                stats[name] = moments.result()
            if len(stats) == len(names):
                return stats
            with swapped_running_stats(model, stats):
                activations = [child(batch) for batch in activations]
    return stats


def population_stats(model, loader, device=None):
    """{layer name: PopulationStats} of each BatchNorm layer's input over all of `loader`, in eval mode.

    Layers are done in order, each with the earlier layers already normalizing with their
    population statistics, which is what eval mode will see once these are installed. For an
    nn.Sequential this takes one pass and holds one layer's activations for the whole loader.
    """
    device = model_device(model, device)
    if isinstance(model, nn.Sequential) and all("." not in name for name, _ in batchnorm_layers(model)):
        return _population_layer_by_layer(model, loader, device)
    stats = {}
    for name, module in batchnorm_layers(model):
        with swapped_running_stats(model, stats):
            stats[name] = _input_moments(model, module, loader, device).result()
    return stats


def population_at_steps(recorder, loader, steps, device=None):
    """{layer name: (steps (K,), means (K, units), unbiased variances (K, units))} of all of `loader` at kept steps."""
    per_step = [population_stats(recorder.model_at(step), loader, device) for step in steps]
    return {
        name: (
            np.array(steps),
            torch.stack([entry[name].mean for entry in per_step]).numpy(),
            torch.stack([entry[name].var for entry in per_step]).numpy(),
        )
        for name in recorder.recording
    }


def recalibrate(model, loader, device=None, *, layer_by_layer=False):
    """Replace every BatchNorm's running statistics by the average of its batch statistics over `loader`; returns model.

    The nn-API recipe: reset_running_stats(), momentum=None (cumulative average), forward passes
    under no_grad with only the BatchNorm layers in train mode (dropout stays off), then the old
    momentum back and the model in eval mode. It differs from `population_stats` twice over: it
    averages per-batch statistics, and all BatchNorm layers are in train mode at once, so a deeper
    layer sees inputs normalized with the earlier layers' batch statistics, not the eval-mode ones.
    `layer_by_layer=True` removes the second difference: one pass per layer, the earlier layers
    already in eval mode with their new statistics.
    """
    device = model_device(model, device)
    layers = [module for _, module in batchnorm_layers(model)]
    momenta = [module.momentum for module in layers]
    model.eval()
    try:
        for group in ([layer] for layer in layers) if layer_by_layer else [layers]:
            for module in group:
                module.reset_running_stats()
                module.momentum = None
                module.train()
            with torch.no_grad():
                for images, _ in loader:
                    model(images.to(device))
            for module in group:
                module.eval()
    finally:
        for module, momentum in zip(layers, momenta, strict=True):
            module.momentum = momentum
        model.eval()
    return model
