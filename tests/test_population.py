"""Whole-training-set statistics and recalibrate (bnlib.stats.population) against a direct float64 computation."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bnlib.data import TensorLoader
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.population import population_at_steps, population_stats, recalibrate
from bnlib.stats.recording import BatchStatsRecorder


def loader_of(run, batch_size):
    return TensorLoader(run.images, run.labels, batch_size)


def direct_population_stats(model, inputs):
    """Statistics of the two BN inputs of make_mlp(bn="before", dropout=...) over all `inputs`, by hand in float64."""
    weights = {name: parameter.detach().double() for name, parameter in model.named_parameters()}
    first = F.linear(inputs.flatten(1).double(), weights["1.weight"])  # (N, 784) -> (N, 32), no bias before BN
    normalized = (first - first.mean(0)) / torch.sqrt(first.var(0) + model[2].eps)  # eval mode: unbiased variance
    second = F.linear(F.relu(normalized * weights["2.weight"] + weights["2.bias"]), weights["5.weight"])  # no dropout
    return {
        name: (hidden.mean(0), hidden.var(0), hidden.var(0, unbiased=False))
        for name, hidden in (("2", first), ("6", second))
    }


def test_population_stats_equal_a_direct_computation(recorded_run):
    model = recorded_run.model
    population = population_stats(model, loader_of(recorded_run, 300))
    expected = direct_population_stats(model, recorded_run.images)
    assert list(population) == ["2", "6"]
    for name, (mean, var, var_biased) in expected.items():
        torch.testing.assert_close(population[name].mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(population[name].var, var, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(population[name].var_biased, var_biased, rtol=1e-5, atol=1e-6)
        assert population[name].count == len(recorded_run.images)


class Wrapped(nn.Module):
    """Not a Sequential: population_stats takes its general path, one pass per BatchNorm layer."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, inputs):
        return self.inner(inputs)


def test_population_stats_general_path_agrees_with_the_sequential_one(recorded_run):
    model, loader = recorded_run.model, loader_of(recorded_run, 300)
    sequential, general = population_stats(model, loader), population_stats(Wrapped(model), loader)
    assert list(general) == ["inner.2", "inner.6"]
    for name, entry in sequential.items():
        for field in ("mean", "var", "var_biased"):
            torch.testing.assert_close(
                getattr(general[f"inner.{name}"], field), getattr(entry, field), rtol=1e-6, atol=1e-9
            )


def test_population_at_steps_stacks_each_kept_steps_statistics(recorded_run):
    recorder, loader = recorded_run.recorder, loader_of(recorded_run, 1024)
    reference = population_at_steps(recorder, loader, [0, 32, 96])
    assert list(reference) == ["2", "6"]
    steps, means, variances = reference["6"]
    assert steps.tolist() == [0, 32, 96] and means.shape == variances.shape == (3, 16)
    expected = population_stats(recorder.model_at(32), loader)["6"]
    torch.testing.assert_close(torch.as_tensor(means[1]), expected.mean, rtol=0, atol=0)
    torch.testing.assert_close(torch.as_tensor(variances[1]), expected.var, rtol=0, atol=0)


def test_recalibrate_averages_batch_statistics_with_dropout_off(recorded_run):
    model = copy.deepcopy(recorded_run.model)
    loader = loader_of(recorded_run, 256)
    with BatchStatsRecorder(model) as recorder:
        result = recalibrate(model, loader)
    assert result is model and not model.training
    assert all(module.momentum == 0.1 for _, module in batchnorm_layers(model))
    population = population_stats(model, loader)
    for name, module in batchnorm_layers(model):
        layer = recorder.recording[name]
        assert len(layer.mean) == len(loader) == 8
        torch.testing.assert_close(module.running_mean, layer.mean.mean(0).float(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(module.running_var, layer.var.mean(0).float(), rtol=1e-5, atol=1e-6)
        assert module.num_batches_tracked.item() == len(loader)
    # Dropout off: recalibrating again gives the same buffers (dropout masks would differ).
    again = recalibrate(copy.deepcopy(model), loader)
    torch.testing.assert_close(again.state_dict(), model.state_dict(), rtol=0, atol=0)
    # The first layer sees the same inputs in both; only the per-batch variance spread differs.
    torch.testing.assert_close(model[2].running_mean, population["2"].mean.float(), rtol=1e-4, atol=1e-5)


def test_recalibrate_layer_by_layer_normalizes_earlier_layers_in_eval_mode(recorded_run):
    loader = loader_of(recorded_run, 256)
    together = recalibrate(copy.deepcopy(recorded_run.model), loader)
    model = copy.deepcopy(recorded_run.model)
    with BatchStatsRecorder(model) as recorder:
        assert recalibrate(model, loader, layer_by_layer=True) is model and not model.training
    assert [len(recorder.recording[name].mean) for name in ("2", "6")] == [8, 8]  # one pass per layer
    # The first layer sees the same inputs either way.
    torch.testing.assert_close(model[2].state_dict(), together[2].state_dict(), rtol=0, atol=0)
    # The second layer averages the batch statistics of inputs normalized by the first layer in eval mode.
    first = model[:6].eval()
    with torch.no_grad():
        batches = [first(images).double() for images, _ in loader]
    expected_mean = torch.stack([batch.mean(0) for batch in batches]).mean(0)
    expected_var = torch.stack([batch.var(0) for batch in batches]).mean(0)
    torch.testing.assert_close(model[6].running_mean.double(), expected_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model[6].running_var.double(), expected_var, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(model[6].running_var, together[6].running_var, rtol=1e-4, atol=1e-6)
    assert all(module.momentum == 0.1 for _, module in batchnorm_layers(model))
