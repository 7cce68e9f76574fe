"""Recording batch statistics and replaying PyTorch's rule (bnlib.stats.recording, .running) against real BatchNorm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.recording import BatchStatsRecorder, _RowBuffer, checkpoint_steps
from bnlib.stats.running import (
    keras_to_torch_momentum,
    replay_running_stats,
    running_stats_at,
    running_weights,
    torch_to_keras_momentum,
)
from bnlib.train import train_model

REPLAY_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}  # float64 replay vs buffers accumulated in float32
NUM_IMAGES = 2048
BATCH_SIZE = 64  # 32 steps per epoch


@pytest.fixture(scope="module")
def subset(mnist):
    return mnist.split("train", NUM_IMAGES)


def loader_over(subset, batch_size=BATCH_SIZE, shuffle=True):
    return TensorLoader(*subset, batch_size, shuffle=shuffle, seed=0, drop_last=shuffle)


def make_model(bn="before", momentum=0.1):
    torch.manual_seed(0)
    model = make_mlp((32, 16), bn=bn)
    for _, module in batchnorm_layers(model):
        module.momentum = momentum
    return model


@pytest.mark.parametrize("bn", ["before", "after"])
@pytest.mark.parametrize("momentum", [0.1, 0.01, 0.5, 1.0, None])
def test_replay_equals_the_buffers_of_real_training(subset, bn, momentum):
    model, loader = make_model(bn, momentum), loader_over(subset)
    with BatchStatsRecorder(model, keep_weights_at=(0, 1, 5, 50, 192)) as recorder:
        train_model(model, 6, loader, loader_over(subset, 512, shuffle=False), progress=False, device="cpu",
                    on_batch=recorder, seed=0)
    assert recorder.steps == 6 * len(loader) == 192
    for name, module in batchnorm_layers(model):
        layer = recorder.recording[name]
        assert layer.mean.shape == layer.var.shape == (192, module.num_features)
        running_mean, running_var = replay_running_stats(layer.mean, layer.var, momentum)
        assert running_mean.shape == (193, module.num_features)
        torch.testing.assert_close(running_mean[-1].float(), module.running_mean, **REPLAY_TOLERANCE)
        torch.testing.assert_close(running_var[-1].float(), module.running_var, **REPLAY_TOLERANCE)
        assert module.num_batches_tracked.item() == recorder.steps
        for step, kept in recorder.weights.items():  # the buffers along the way, not only at the end
            mean, var = running_stats_at(recorder.recording, step, momentum)[name]
            torch.testing.assert_close(mean.float(), kept[f"{name}.running_mean"], **REPLAY_TOLERANCE)
            torch.testing.assert_close(var.float(), kept[f"{name}.running_var"], **REPLAY_TOLERANCE)
    with pytest.raises(ValueError, match="step must be in"):
        running_stats_at(recorder.recording, 193, momentum)


def test_recorder_in_a_hand_written_loop_skips_eval_passes_and_removes_its_hooks(subset):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with BatchStatsRecorder(model, keep_weights_at=[3]) as recorder:
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
    assert all(not module._forward_hooks for _, module in batchnorm_layers(model))


def test_recorder_records_exact_batch_statistics_and_removes_hooks_after_an_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    inputs = torch.randn(10, 4)
    with pytest.raises(RuntimeError), BatchStatsRecorder(model) as recorder:
        model(inputs)
        raise RuntimeError("stop")
    hidden = model[0](inputs).double()
    layer = recorder.recording["1"]
    torch.testing.assert_close(layer.mean[0], hidden.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.var[0], hidden.var(0, unbiased=True), rtol=1e-12, atol=1e-12)
    assert layer.batch_size.tolist() == [10]
    assert not model[1]._forward_hooks


def test_row_buffer_grows_past_its_capacity_and_keeps_pytorchs_statistics():
    torch.manual_seed(0)
    batches = [torch.randn(6 + index, 3, dtype=torch.float64) * 4 + index for index in range(5)]  # (N, C)
    buffer = _RowBuffer(3, capacity=2)  # doubled twice: 2 -> 4 -> 8 rows
    for batch in batches:
        buffer.add(batch)
    recording = buffer.recording()
    assert recording.mean.shape == recording.var.shape == (5, 3) and len(buffer.mean) == 8
    # each row is what torch's mean and var give that batch, copied as it is: equal to the bit (rtol=atol=0)
    torch.testing.assert_close(recording.mean, torch.stack([batch.mean(0) for batch in batches]), rtol=0, atol=0)
    torch.testing.assert_close(recording.var, torch.stack([batch.var(0) for batch in batches]), rtol=0, atol=0)
    assert recording.batch_size.tolist() == [6, 7, 8, 9, 10]


def test_recorder_rows_equal_batchnorm1d_on_three_dimensional_input():
    torch.manual_seed(0)
    layer = nn.BatchNorm1d(4, momentum=1.0)  # momentum 1: running_var is the last batch's unbiased variance
    with BatchStatsRecorder(layer) as recorder:
        for _ in range(3):
            inputs = torch.randn(5, 4, 7)  # (N, C, L): 35 values per channel
            layer(inputs)
    recording = recorder.recording[""]
    assert recording.mean.shape == (3, 4) and recording.batch_size.tolist() == [35] * 3
    torch.testing.assert_close(recording.mean[-1].float(), layer.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(recording.var[-1].float(), layer.running_var, rtol=1e-5, atol=1e-6)


def test_recorder_needs_a_batchnorm_layer():
    with pytest.raises(ValueError, match="no BatchNorm"):
        BatchStatsRecorder(nn.Linear(3, 2))


@pytest.mark.parametrize("momentum", [0.0, -0.1, 1.5, True, "0.1", float("nan")])
def test_replay_rejects_momentum_outside_0_1(momentum):
    with pytest.raises(ValueError, match=r"momentum must be a number in \(0, 1\]"):
        replay_running_stats(torch.zeros(3, 2), torch.ones(3, 2), momentum)


def test_replay_keeps_the_initial_row_and_accepts_one_unit():
    means = torch.tensor([1.0, 2.0, 4.0])
    running_mean, running_var = replay_running_stats(means, means, 0.5, init_mean=0.0, init_var=1.0)
    torch.testing.assert_close(running_mean, torch.tensor([0.0, 0.5, 1.25, 2.625], dtype=torch.float64))
    torch.testing.assert_close(running_var, torch.tensor([1.0, 1.0, 1.5, 2.75], dtype=torch.float64))
    cumulative, _ = replay_running_stats(means, means, None)
    torch.testing.assert_close(cumulative, torch.tensor([0.0, 1.0, 1.5, 7 / 3], dtype=torch.float64))


@pytest.mark.parametrize(
    ("steps", "momentum", "init_weight", "weights"),
    [(0, 0.1, 1.0, []), (3, 0.5, 0.125, [0.125, 0.25, 0.5]), (2, 1.0, 0.0, [0.0, 1.0]), (0, None, 1.0, []),
     (4, None, 0.0, [0.25] * 4)],
)
def test_running_weights_are_the_rules_known_answers(steps, momentum, init_weight, weights):
    init, batches = running_weights(steps, momentum)
    assert init == pytest.approx(init_weight) and batches.tolist() == pytest.approx(weights)


def test_momentum_converters():
    assert keras_to_torch_momentum(0.99) == pytest.approx(0.01)
    assert torch_to_keras_momentum(0.1) == pytest.approx(0.9)
    for momentum in (0.001, 0.1, 0.5, 1.0):
        assert keras_to_torch_momentum(torch_to_keras_momentum(momentum)) == pytest.approx(momentum)
    with pytest.raises(ValueError, match="Keras momentum"):
        keras_to_torch_momentum(1.0)
    with pytest.raises(ValueError, match="None"):
        torch_to_keras_momentum(None)
    with pytest.raises(ValueError, match="momentum"):
        torch_to_keras_momentum(0.0)


def test_checkpoint_steps():
    assert checkpoint_steps(210, 2) == [0, 1, 2, 5, 10, 20, 50, 100, 210, 420]
    assert checkpoint_steps(15, 2, early=(1, 20, 100)) == [0, 1, 15, 20, 30]
    assert np.all(np.diff(checkpoint_steps(210, 50)) > 0)


def test_nearest_kept_step(recorded_run):
    recorder = recorded_run.recorder
    assert sorted(recorder.weights) == [0, 1, 2, 5, 10, 20, 32, 50, 64, 96]
    assert recorder.nearest_kept_step(40) == 32
    assert recorder.nearest_kept_step(42) == 50
    assert recorder.nearest_kept_step(41) == 32  # a tie goes to the earlier step
    with pytest.raises(ValueError, match="no weights kept at step 40"):
        recorder.model_at(40)
