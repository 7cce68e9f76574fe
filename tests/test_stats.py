"""bnlib.stats against real nn.BatchNorm1d layers: recorded and replayed statistics, population statistics, folding."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import stats
from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.train import compute_accuracy, train_model

REPLAY_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}  # the bar for replay vs real buffers
FOLD_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
HIDDEN = (32, 16)  # small layers keep each test to about a second
NUM_IMAGES = 2048
BATCH_SIZE = 64  # 32 steps per epoch


@pytest.fixture(scope="module")
def subset(mnist):
    images, labels = mnist.train
    return images[:NUM_IMAGES], labels[:NUM_IMAGES]


def loader_over(subset, batch_size=BATCH_SIZE, shuffle=True, seed=0):
    return TensorLoader(*subset, batch_size, shuffle=shuffle, seed=seed, drop_last=shuffle)


def make_model(bn="before", momentum=0.1, seed=0, **options):
    torch.manual_seed(seed)
    model = make_mlp(HIDDEN, bn=bn, **options)
    for _, module in stats.batchnorm_layers(model):
        module.momentum = momentum
    return model


def train_recorded(subset, bn="before", momentum=0.1, num_epochs=6, keep=(0, 1, 5, 50, 192), **options):
    """A small BN model trained with train_model for num_epochs * 32 steps, with its recorder."""
    model = make_model(bn, momentum, **options)
    loader = loader_over(subset)
    with stats.BatchStatsRecorder(model, keep_weights_at=keep) as recorder:
        train_model(
            model,
            num_epochs,
            loader,
            loader_over(subset, 512, shuffle=False),
            progress=False,
            device="cpu",
            on_batch=recorder,
            seed=0,
        )
    return model, recorder


@pytest.mark.parametrize("bn", ["before", "after"])
@pytest.mark.parametrize("momentum", [0.1, 0.01, 0.5, 1.0, None])
def test_replay_equals_the_buffers_of_real_training(subset, bn, momentum):
    model, recorder = train_recorded(subset, bn, momentum)
    assert recorder.steps == 6 * len(loader_over(subset)) == 192
    for name, module in stats.batchnorm_layers(model):
        layer = recorder.recording[name]
        assert layer.mean.shape == layer.var.shape == (192, module.num_features)
        running_mean, running_var = stats.replay_running_stats(layer.mean, layer.var, momentum)
        assert running_mean.shape == (193, module.num_features)
        torch.testing.assert_close(running_mean[-1].float(), module.running_mean, **REPLAY_TOLERANCE)
        torch.testing.assert_close(running_var[-1].float(), module.running_var, **REPLAY_TOLERANCE)
        assert module.num_batches_tracked.item() == recorder.steps
        for step, kept in recorder.weights.items():  # the buffers along the way, not only at the end
            torch.testing.assert_close(running_mean[step].float(), kept[f"{name}.running_mean"], **REPLAY_TOLERANCE)
            torch.testing.assert_close(running_var[step].float(), kept[f"{name}.running_var"], **REPLAY_TOLERANCE)


def test_recorder_in_a_hand_written_loop_skips_eval_passes_and_removes_its_hooks(subset):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with stats.BatchStatsRecorder(model, keep_weights_at=[3]) as recorder:
        for step, (images, labels) in enumerate(loader_over(subset), start=1):
            model.train()
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recorder(model, step)
            model.eval()
            model(images)  # eval passes are not recorded
            if step == 5:
                break
    assert recorder.steps == 5
    assert set(recorder.weights) == {3}
    model.train()
    model(images)
    assert recorder.steps == 5, "hooks must be removed on exit"
    assert all(not module._forward_hooks for _, module in stats.batchnorm_layers(model))


def test_recorder_records_exact_batch_statistics_and_removes_hooks_after_an_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    inputs = torch.randn(10, 4)
    with pytest.raises(RuntimeError), stats.BatchStatsRecorder(model) as recorder:
        model(inputs)
        raise RuntimeError("stop")
    hidden = model[0](inputs).double()
    layer = recorder.recording["1"]
    torch.testing.assert_close(layer.mean[0], hidden.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.var[0], hidden.var(0, unbiased=True), rtol=1e-12, atol=1e-12)
    assert layer.batch_size.tolist() == [10]
    assert not model[1]._forward_hooks


def test_recorder_needs_a_batchnorm_layer():
    with pytest.raises(ValueError, match="no BatchNorm"):
        stats.BatchStatsRecorder(nn.Linear(3, 2))


@pytest.mark.parametrize("momentum", [0.0, -0.1, 1.5, True, "0.1", float("nan")])
def test_replay_rejects_momentum_outside_0_1(momentum):
    with pytest.raises(ValueError, match="momentum"):
        stats.replay_running_stats(torch.zeros(3, 2), torch.ones(3, 2), momentum)


def test_replay_keeps_the_initial_row_and_accepts_one_unit():
    means = torch.tensor([1.0, 2.0, 4.0])
    running_mean, running_var = stats.replay_running_stats(means, means, 0.5, init_mean=0.0, init_var=1.0)
    torch.testing.assert_close(running_mean, torch.tensor([0.0, 0.5, 1.25, 2.625], dtype=torch.float64))
    torch.testing.assert_close(running_var, torch.tensor([1.0, 1.0, 1.5, 2.75], dtype=torch.float64))
    cumulative, _ = stats.replay_running_stats(means, means, None)
    torch.testing.assert_close(cumulative, torch.tensor([0.0, 1.0, 1.5, 7 / 3], dtype=torch.float64))


@pytest.mark.parametrize("momentum", [0.001, 0.1, 1.0, None])
def test_running_stats_at_one_step_equals_the_replayed_row(momentum):
    generator = torch.Generator().manual_seed(0)
    means, variances = torch.randn(300, 5, generator=generator), torch.rand(300, 5, generator=generator)
    recording = {"bn": stats.LayerRecording(means.double(), variances.double(), torch.full((300,), 8))}
    running_mean, running_var = stats.replay_running_stats(means, variances, momentum)
    for step in (0, 1, 17, 300):
        mean, var = stats.running_stats_at(recording, step, momentum)["bn"]
        torch.testing.assert_close(mean, running_mean[step], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(var, running_var[step], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="step"):
        stats.running_stats_at(recording, 301, momentum)


def test_momentum_converters():
    assert stats.keras_to_torch_momentum(0.99) == pytest.approx(0.01)
    assert stats.torch_to_keras_momentum(0.1) == pytest.approx(0.9)
    for momentum in (0.001, 0.1, 0.5, 1.0):
        assert stats.keras_to_torch_momentum(stats.torch_to_keras_momentum(momentum)) == pytest.approx(momentum)
    with pytest.raises(ValueError, match="Keras momentum"):
        stats.keras_to_torch_momentum(1.0)
    with pytest.raises(ValueError, match="None"):
        stats.torch_to_keras_momentum(None)
    with pytest.raises(ValueError, match="momentum"):
        stats.torch_to_keras_momentum(0.0)


@pytest.fixture(scope="module")
def trained(subset):
    """A model (BN before the activation, dropout 0.2) trained for 3 epochs, with its recorder."""
    return train_recorded(subset, "before", 0.1, num_epochs=3, keep=(0, 96), dropout=0.2)


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


def test_population_stats_equal_a_direct_computation(subset, trained):
    model, _ = trained
    population = stats.population_stats(model, loader_over(subset, 300, shuffle=False))
    expected = direct_population_stats(model, subset[0])
    assert list(population) == ["2", "6"]
    for name, (mean, var, var_biased) in expected.items():
        torch.testing.assert_close(population[name].mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(population[name].var, var, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(population[name].var_biased, var_biased, rtol=1e-5, atol=1e-6)
        assert population[name].count == NUM_IMAGES


class Wrapped(nn.Module):
    """Not a Sequential: population_stats takes its general path, one pass per BatchNorm layer."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, inputs):
        return self.inner(inputs)


def test_population_stats_general_path_agrees_with_the_sequential_one(subset, trained):
    model, _ = trained
    loader = loader_over(subset, 300, shuffle=False)
    sequential, general = stats.population_stats(model, loader), stats.population_stats(Wrapped(model), loader)
    assert list(general) == ["inner.2", "inner.6"]
    for name, entry in sequential.items():
        for field in ("mean", "var", "var_biased"):
            torch.testing.assert_close(
                getattr(general[f"inner.{name}"], field), getattr(entry, field), rtol=1e-6, atol=1e-9
            )


def test_kept_weights_evaluator_equals_evaluate_with_stats(subset, trained):
    model, recorder = trained
    loader = loader_over(subset, 512, shuffle=False)
    evaluator = stats.KeptWeightsEvaluator(recorder, loader, max_cached=1)
    for step in (0, 96, 0):  # the cache holds one step: the second 0 is computed again
        for momentum in (0.001, None):
            layer_stats = stats.running_stats_at(recorder.recording, step, momentum)
            expected = stats.evaluate_with_stats(recorder.model_at(step), loader, layer_stats)
            assert evaluator.accuracy(step, layer_stats) == expected
    with pytest.raises(ValueError, match="missing"):
        evaluator.accuracy(96, {})


def test_evaluate_with_stats_uses_them_and_leaves_the_buffers_unchanged(subset, trained):
    model, recorder = trained
    model.train()
    before = copy.deepcopy(model.state_dict())
    loader = loader_over(subset, 512, shuffle=False)
    population = stats.population_stats(model, loader)
    accuracy = stats.evaluate_with_stats(model, loader, population)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and all(module.training for module in model.modules())
    by_hand = copy.deepcopy(model).eval()
    for name, module in stats.batchnorm_layers(by_hand):
        module.running_mean.copy_(population[name].mean)
        module.running_var.copy_(population[name].var)
    assert accuracy == compute_accuracy(by_hand, loader)
    with pytest.raises(ValueError, match="missing"):
        stats.evaluate_with_stats(model, loader, {"2": population["2"]})
    with pytest.raises(ValueError, match="does not have"):
        stats.evaluate_with_stats(model, loader, {**population, "9": population["2"]})
    model.eval()


def test_accuracy_vs_momentum_reproduces_the_trained_model(subset, trained):
    model, recorder = trained
    loader = loader_over(subset, 512, shuffle=False)
    rows = stats.accuracy_vs_momentum(recorder, loader, steps=[96], momenta=[0.1, None], population_loader=loader)
    assert [row["statistics"] for row in rows] == ["running average", "cumulative average", "whole training set"]
    assert rows[0]["accuracy"] == compute_accuracy(model.eval(), loader)  # trained with momentum 0.1
    with pytest.raises(ValueError, match="no weights kept at step 5"):
        stats.accuracy_vs_momentum(recorder, loader, steps=[5], momenta=[0.1])


def test_recalibrate_averages_batch_statistics_with_dropout_off(subset, trained):
    model = copy.deepcopy(trained[0])
    loader = loader_over(subset, 256, shuffle=False)
    with stats.BatchStatsRecorder(model) as recorder:
        result = stats.recalibrate(model, loader)
    assert result is model and not model.training
    assert all(module.momentum == 0.1 for _, module in stats.batchnorm_layers(model))
    population = stats.population_stats(model, loader)
    for name, module in stats.batchnorm_layers(model):
        layer = recorder.recording[name]
        assert len(layer.mean) == len(loader) == 8
        torch.testing.assert_close(module.running_mean, layer.mean.mean(0).float(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(module.running_var, layer.var.mean(0).float(), rtol=1e-5, atol=1e-6)
        assert module.num_batches_tracked.item() == len(loader)
    # Dropout off: recalibrating again gives the same buffers (dropout masks would differ).
    again = stats.recalibrate(copy.deepcopy(model), loader)
    torch.testing.assert_close(again.state_dict(), model.state_dict(), rtol=0, atol=0)
    # The first layer sees the same inputs in both; only the per-batch variance spread differs.
    torch.testing.assert_close(model[2].running_mean, population["2"].mean.float(), rtol=1e-4, atol=1e-5)


def test_fold_batchnorm_keeps_eval_outputs_and_removes_the_layers(subset, trained):
    model = trained[0].eval()
    folded = stats.fold_batchnorm(model)
    assert not stats.batchnorm_layers(folded) and not folded.training
    assert stats.batchnorm_layers(model), "the original is left alone"
    inputs = subset[0][:500]
    with torch.no_grad():
        torch.testing.assert_close(folded(inputs), model(inputs), **FOLD_TOLERANCE)
    assert [type(layer).__name__ for layer in folded] == [
        "Flatten",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]


def test_fold_batchnorm_handles_a_bias_and_no_affine():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 4), nn.BatchNorm1d(4, affine=False), nn.Tanh(), nn.Linear(4, 3), nn.BatchNorm1d(3)
    )
    model.train()
    for _ in range(3):
        model(torch.randn(16, 6) * 3 + 1)
    with torch.no_grad():
        model[4].weight.uniform_(0.5, 2)
        model[4].bias.normal_()
    model.eval()
    inputs = torch.randn(20, 6)
    with torch.no_grad():
        torch.testing.assert_close(stats.fold_batchnorm(model)(inputs), model(inputs), **FOLD_TOLERANCE)


def test_fold_batchnorm_rejects_a_batchnorm_after_the_activation():
    with pytest.raises(ValueError, match=r"cannot fold BatchNorm layer 3: it follows ReLU, not a Linear"):
        stats.fold_batchnorm(make_mlp(HIDDEN, bn="after").eval())
    with pytest.raises(ValueError, match="Sequential"):
        stats.fold_batchnorm(nn.BatchNorm1d(3))


def test_checkpoint_steps():
    assert stats.checkpoint_steps(210, 2) == [0, 1, 2, 5, 10, 20, 50, 100, 210, 420]
    assert stats.checkpoint_steps(15, 2, early=(1, 20, 100)) == [0, 1, 15, 20, 30]
    assert np.all(np.diff(stats.checkpoint_steps(210, 50)) > 0)


def test_nearest_kept_step(trained):
    _, recorder = trained
    assert recorder.nearest_kept_step(10) == 0
    assert recorder.nearest_kept_step(60) == 96
    assert recorder.nearest_kept_step(48) == 0  # a tie goes to the earlier step
