"""Eval-mode accuracy with chosen BatchNorm statistics: any statistics, a recorder's kept weights, a momentum sweep."""

import math
from collections import OrderedDict

import torch
from torch import nn

from bnlib.runtime import model_device
from bnlib.stats.batchnorm import BATCHNORM_TYPES, check_covers_every_layer, swapped_running_stats
from bnlib.stats.population import population_stats
from bnlib.stats.running import running_stats_at
from bnlib.train import compute_accuracy


def evaluate_with_stats(model, loader, stats, device=None):
    """Eval-mode accuracy (percent) with every BatchNorm layer normalizing with `stats` instead of its buffers.

    `stats` maps each BatchNorm layer's name to (mean, var) or a PopulationStats (its unbiased var
    is used, like running_var). The model's buffers and modes are exactly as before afterwards.
    """
    check_covers_every_layer(model, stats)
    with swapped_running_stats(model, stats):
        return compute_accuracy(model, loader, device)


class KeptWeightsEvaluator:
    """Eval-mode accuracy of a recorder's kept weights with given BatchNorm statistics, on a loader held in memory.

    For an nn.Sequential the part before the first BatchNorm does not depend on the statistics, so
    its output on the whole loader is computed once per kept step and cached (`max_cached` steps).
    """

    def __init__(self, recorder, loader, device=None, max_cached=16):
        self.recorder = recorder
        images, labels = zip(*loader, strict=True)
        self.images, self.labels = torch.cat(images), torch.cat(labels).cpu()
        self.device = device
        self.max_cached = max_cached
        self._cache = OrderedDict()  # step -> (model, statistics-dependent part, features before it)

    @staticmethod
    def _split(model):
        """(part before the first BatchNorm, the rest) of an nn.Sequential; (identity, model) otherwise."""
        if isinstance(model, nn.Sequential):
            for index, child in enumerate(model):
                if any(isinstance(module, BATCHNORM_TYPES) for module in child.modules()):
                    return model[:index], model[index:]
        return nn.Identity(), model

    @torch.no_grad()
    def _prepared(self, step):
        if step not in self._cache:
            model = self.recorder.model_at(step).eval()
            prefix, suffix = self._split(model)
            device = model_device(model, self.device)
            self._cache[step] = (model, suffix, prefix(self.images.to(device)))
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        self._cache.move_to_end(step)
        return self._cache[step]

    @torch.no_grad()
    def accuracy(self, step, stats):
        """Accuracy in percent of the weights kept at `step`, every BatchNorm normalizing with `stats`."""
        model, suffix, features = self._prepared(step)
        check_covers_every_layer(model, stats)
        with swapped_running_stats(model, stats):
            predictions = suffix(features).argmax(dim=1).cpu()
        return 100.0 * (predictions == self.labels).sum().item() / len(self.labels)


def statistics_label(momentum):
    """How a sweep row names its statistics: "momentum 0.01", or "None (cumulative average)"."""
    return "None (cumulative average)" if momentum is None else f"momentum {momentum:.3g}"


def accuracy_vs_momentum(recorder, loader, steps, momenta, population_loader=None, device=None):
    """Rows {step, momentum, statistics, label, accuracy}: eval-mode accuracy (percent) of the weights kept at steps.

    Each step's weights normalize with the running statistics replayed for each momentum (None:
    cumulative average) and, when `population_loader` is given, with that data's population
    statistics (row with momentum NaN and statistics "whole training set"). `label` names the
    statistics in one readable string, for tables.
    """
    evaluator = KeptWeightsEvaluator(recorder, loader, device, max_cached=1)
    rows = []
    for step in steps:
        for momentum in momenta:
            accuracy = evaluator.accuracy(step, running_stats_at(recorder.recording, step, momentum))
            kind = "cumulative average" if momentum is None else "running average"
            rows.append({"step": step, "momentum": momentum, "statistics": kind, "label": statistics_label(momentum),
                         "accuracy": accuracy})
        if population_loader is not None:
            population = population_stats(recorder.model_at(step), population_loader, device)
            rows.append({"step": step, "momentum": math.nan, "statistics": "whole training set",
                         "label": "whole training set", "accuracy": evaluator.accuracy(step, population)})
    return rows
