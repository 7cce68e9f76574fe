"""Eval-mode accuracy with chosen statistics (bnlib.stats.evaluation) against compute_accuracy, set up by hand."""

import copy

import pytest
import torch

from bnlib.data import TensorLoader
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.evaluation import KeptWeightsEvaluator, accuracy_vs_momentum, evaluate_with_stats
from bnlib.stats.population import population_stats
from bnlib.stats.running import running_stats_at
from bnlib.train import compute_accuracy


@pytest.fixture
def loader(recorded_run):
    return TensorLoader(recorded_run.images, recorded_run.labels, 512)


def test_kept_weights_evaluator_equals_evaluate_with_stats(recorded_run, loader):
    recorder = recorded_run.recorder
    evaluator = KeptWeightsEvaluator(recorder, loader, max_cached=1)
    for step in (0, 96, 0):  # the cache holds one step: the second 0 is computed again
        for momentum in (0.001, None):
            layer_stats = running_stats_at(recorder.recording, step, momentum)
            expected = evaluate_with_stats(recorder.model_at(step), loader, layer_stats)
            assert evaluator.accuracy(step, layer_stats) == expected
    with pytest.raises(ValueError, match="missing"):
        evaluator.accuracy(96, {})


def test_evaluate_with_stats_uses_them_and_leaves_the_buffers_unchanged(recorded_run, loader):
    model = copy.deepcopy(recorded_run.model).train()
    before = copy.deepcopy(model.state_dict())
    population = population_stats(model, loader)
    accuracy = evaluate_with_stats(model, loader, population)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and all(module.training for module in model.modules())
    by_hand = copy.deepcopy(model).eval()
    for name, module in batchnorm_layers(by_hand):
        module.running_mean.copy_(population[name].mean)
        module.running_var.copy_(population[name].var)
    assert accuracy == compute_accuracy(by_hand, loader)
    with pytest.raises(ValueError, match="missing"):
        evaluate_with_stats(model, loader, {"2": population["2"]})
    with pytest.raises(ValueError, match="does not have"):
        evaluate_with_stats(model, loader, {**population, "9": population["2"]})


def test_accuracy_vs_momentum_reproduces_the_trained_model(recorded_run, loader):
    recorder = recorded_run.recorder
    rows = accuracy_vs_momentum(recorder, loader, steps=[96], momenta=[0.1, None], population_loader=loader)
    assert [row["statistics"] for row in rows] == ["running average", "cumulative average", "whole training set"]
    assert [row["label"] for row in rows] == ["momentum 0.1", "None (cumulative average)", "whole training set"]
    assert rows[0]["accuracy"] == compute_accuracy(copy.deepcopy(recorded_run.model).eval(), loader)  # momentum 0.1
    assert rows[2]["accuracy"] == evaluate_with_stats(recorder.model_at(96), loader, population_stats(
        recorder.model_at(96), loader))
    with pytest.raises(ValueError, match="no weights kept at step 40"):
        accuracy_vs_momentum(recorder, loader, steps=[40], momenta=[0.1])
