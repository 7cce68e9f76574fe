"""rounding_tolerance and replay_tolerance: bounds from the unit roundoff and the magnitudes, which hold for real
reorderings (batch sizes, thread counts) and still catch a slip."""

import copy

import pytest
import torch
from torch import nn

from bnlib.data import lecture_loaders, load_mnist
from bnlib.models import make_mlp
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.recording import BatchStatsRecorder, LayerRecording
from bnlib.stats.running import replay_running_stats
from bnlib.stats.tolerances import replay_tolerance, rounding_tolerance
from bnlib.train import train_model


def model_and_inputs():
    torch.manual_seed(0)
    model = make_mlp((32, 16), bn="before").train()
    with torch.no_grad():
        model(torch.rand(64, 1, 28, 28))  # running statistics away from 0 and 1
    return model.eval(), torch.rand(300, 1, 28, 28)


def test_the_bound_scales_with_the_unit_roundoff_and_the_inputs():
    model, inputs = model_and_inputs()
    single = rounding_tolerance(model, inputs)
    assert single.shape == (300, 10) and (single > 0).all()
    double = rounding_tolerance(copy.deepcopy(model).double(), inputs)
    torch.testing.assert_close(single / double, torch.full_like(single, 2.0**29), rtol=1e-9, atol=0)
    assert (rounding_tolerance(model, 3 * inputs) > single).all()


def test_an_example_alone_and_inside_batches_agree_within_the_bound():
    model, inputs = model_and_inputs()
    with torch.no_grad():
        alone = model(inputs[:1])
        for size in (2, 8, 32, 300):  # other batch sizes, other summation orders
            assert ((model(inputs[:size])[:1] - alone).abs() <= rounding_tolerance(model, inputs[:1])).all()


def test_a_layer_it_cannot_bound_is_named():
    with pytest.raises(ValueError, match=r"cannot bound layer 1 \(Sigmoid\)"):
        rounding_tolerance(nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), torch.ones(1, 3))


@pytest.mark.slow  # 2 and 4 threads on a 2-core machine: up to 20 s
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_the_replay_of_the_lecture_model_is_within_its_tolerance_at_any_thread_count(threads):
    """The lecture's BN model trained as in full mode (seed 123, batch 256, SGD lr 0.1), 2 of the 50 epochs."""
    train, valid, _ = lecture_loaders(load_mnist())
    torch.manual_seed(123)
    model = make_mlp(bn="before")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with BatchStatsRecorder(model) as recorder:
            train_model(model, 2, train, valid, progress=False, device="cpu", seed=123)
    finally:
        torch.set_num_threads(before)
    for name, module in batchnorm_layers(model):
        layer = recorder.recording[name]
        mean_tolerance, var_tolerance = replay_tolerance(layer, 0.1)
        running_mean, running_var = replay_running_stats(layer.mean, layer.var, 0.1)
        assert ((running_mean[-1].float() - module.running_mean).abs() <= mean_tolerance[-1]).all()
        assert ((running_var[-1].float() - module.running_var).abs() <= var_tolerance[-1]).all()
        # A slip in the rule shows: another momentum, or the biased batch variance.
        wrong_mean, _ = replay_running_stats(layer.mean, layer.var, 0.11)
        assert ((wrong_mean[-1].float() - module.running_mean).abs() > mean_tolerance[-1]).any()
        biased = layer.var * (layer.batch_size[:, None] - 1) / layer.batch_size[:, None]
        _, wrong_var = replay_running_stats(layer.mean, biased, 0.1)
        assert ((wrong_var[-1].float() - module.running_var).abs() > var_tolerance[-1]).any()


def test_the_replay_tolerance_starts_at_zero_and_grows_with_the_batch():
    means = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64)
    variances = torch.tensor([[0.5, 4.0], [1.0, 2.0]], dtype=torch.float64)
    small = replay_tolerance(LayerRecording(means, variances, torch.tensor([8, 8])), None)
    large = replay_tolerance(LayerRecording(means, variances, torch.tensor([800, 800])), None)
    for low, high in zip(small, large, strict=True):
        assert low.shape == (3, 2) and (low[0] == 0).all() and (high[1:] > low[1:]).all()
