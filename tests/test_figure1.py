"""Figure 1 of Ioffe & Szegedy: the paper's initialization, the tracked sigmoid input as training computes it,
and tracking that leaves the running statistics (and training) untouched."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.runtime import seed_everything
from bnlib.studies import figure1
from bnlib.studies.noisy_batchnorm import NoiseDistribution, RandomAffineNoise, add_noise_after_batchnorm
from tests.support.splits import small_splits

TRACK = {"batch_size": 60, "learning_rate": 0.5, "seed": 0, "num_tracked": 200, "unit": 3}


def buffers(model):
    return {name: value.clone() for name, value in model.named_buffers()}


@pytest.fixture(scope="module")
def data(mnist):
    return small_splits(mnist)


@pytest.mark.parametrize("bn", [False, True])
def test_paper_initialization(bn):
    torch.manual_seed(0)
    model = make_mlp(**figure1.paper_model_options(bn))
    linears = [module for module in model if isinstance(module, nn.Linear)]
    assert [layer.out_features for layer in linears] == [100, 100, 100, 10]
    for layer in linears:
        # The sample std of n normal draws has a relative standard error of about 1/sqrt(2n): allow 5 of them.
        count = layer.weight.numel()
        assert layer.weight.std().item() == pytest.approx(0.01, rel=5 / (2 * count) ** 0.5)
        assert abs(layer.weight.mean().item()) < 5 * 0.01 / count**0.5
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0
    assert sum(isinstance(module, nn.Sigmoid) for module in model) == 3
    assert sum(isinstance(module, nn.BatchNorm1d) for module in model) == (3 if bn else 0)


@pytest.mark.parametrize("bn", [False, True])
def test_sigmoid_inputs_are_what_the_last_sigmoid_receives_in_train_mode(bn):
    torch.manual_seed(0)
    model = make_mlp(**{**figure1.paper_model_options(bn), "init_std": 0.1})
    model.train()(torch.randn(64, 784) + 0.5)  # running statistics away from their initial values
    images = torch.rand(32, 1, 28, 28)
    before = buffers(model)
    measured = figure1.sigmoid_inputs(model, images)
    after = buffers(model)
    probe, received = copy.deepcopy(model).train(), []
    last_sigmoid = [module for module in probe if isinstance(module, nn.Sigmoid)][-1]
    last_sigmoid.register_forward_pre_hook(lambda module, inputs: received.append(inputs[0]))
    with torch.no_grad():
        probe(images)  # PyTorch's own train-mode forward (this one does update the probe's buffers)
    torch.testing.assert_close(measured, received[0], rtol=1e-5, atol=1e-6)
    for name, value in before.items():  # not a single bit of any buffer changed
        assert torch.equal(after[name], value), name
    assert measured.shape == (32, 100)


def test_sigmoid_inputs_needs_a_sigmoid():
    with pytest.raises(ValueError, match="Sigmoid"):
        figure1.sigmoid_inputs(make_mlp((4,)), torch.zeros(2, 784))


def test_percentiles_and_their_movement():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(5, 400)) + np.array([0, 0, 1, 3, 2])[:, None]  # the distribution moves at step 150
    steps = np.array([0, 50, 100, 150, 200])
    np.testing.assert_allclose(figure1.unit_percentiles(samples), np.percentile(samples, (15, 50, 85), axis=1).T)
    moved = figure1.percentile_movement(steps, samples, after_step=100)
    later = np.percentile(samples[2:], (15, 50, 85), axis=1)
    np.testing.assert_allclose(moved, later.max(axis=1) - later.min(axis=1))
    assert moved.shape == (3,) and np.all(moved > 1.5)
    run = SimpleNamespace(record={"tracked_steps": steps}, tensors={"unit_inputs": torch.from_numpy(samples)})
    assert figure1.largest_movement(run, after_step=100) == pytest.approx(moved.max(), rel=1e-12)


def test_first_step_reaching():
    record = {"accuracy_steps": [0, 50, 100, 150], "test_accuracy": [10.0, 89.9, 90.0, 85.0]}
    assert figure1.first_step_reaching(record, 90.0) == 100
    assert figure1.first_step_reaching(record, 95.0) is None


@pytest.mark.parametrize("noisy", [False, True])
def test_tracking_touches_neither_the_running_statistics_nor_training(data, noisy):
    def trained(track_every):
        torch.manual_seed(0)
        model = make_mlp(**figure1.paper_model_options(True))
        model = add_noise_after_batchnorm(model, NoiseDistribution(), seed=0) if noisy else model
        record, tensors = figure1.train_and_track(model, data, num_steps=70, track_every=track_every,
                                                       accuracy_every=1_000, device="cpu", **TRACK)
        return model, record, tensors

    tracked_often, record, tensors = trained(track_every=1)
    tracked_never, _, _ = trained(track_every=1_000)
    for name, value in tracked_often.state_dict().items():  # weights and running statistics, bit for bit
        assert torch.equal(tracked_never.state_dict()[name], value), name
    assert record["tracked_steps"] == list(range(71))
    assert tensors["unit_inputs"].shape == (71, TRACK["num_tracked"])
    if not noisy:  # (a noisy network's next draw differs: training has moved its generators on)
        last = figure1.sigmoid_inputs(tracked_often.train(), data.split("valid", TRACK["num_tracked"])[0])
        torch.testing.assert_close(tensors["unit_inputs"][-1], last[:, TRACK["unit"]])


def test_tracked_run_is_cached_and_measures_where_asked(data, tmp_path):
    options = {"num_steps": 120, "seed": 0, "track_every": 50, "accuracy_every": 50, "num_tracked": 100,
               "cache_dir": tmp_path, "verbose": False}
    first = figure1.tracked_run(True, data, noise=NoiseDistribution(), **options)
    again = figure1.tracked_run(True, data, noise=NoiseDistribution(), **options)
    assert (first.cached, again.cached) == (False, True)
    assert first.record == again.record and torch.equal(first.tensors["unit_inputs"], again.tensors["unit_inputs"])
    assert first.record["tracked_steps"] == [0, 50, 100]
    assert first.record["accuracy_steps"] == [0, 50, 100, 120]
    assert first.record["final_test_accuracy"] == first.record["test_accuracy"][-1]
    assert len(first.record["minibatch_loss"]) == 120
    plain = figure1.tracked_run(False, data, **options)
    assert not plain.cached and plain.key != first.key


@pytest.mark.parametrize("noise", [None, NoiseDistribution()])
def test_the_paper_model_is_built_as_the_notebook_builds_it_and_keyed_without_drawing(noise):
    seed_everything(4)
    model = make_mlp(**figure1.paper_model_options(True))
    model = model if noise is None else add_noise_after_batchnorm(model, noise, seed=4)
    spec = figure1.paper_model(True, noise, seed=4)
    torch.manual_seed(0)
    key = spec.key()
    drawn = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(3))  # computing the key drew no random number
    assert key["structure"] == str(model)
    built = spec.build(seed=4)
    for name, tensor in model.state_dict().items():
        assert torch.equal(built.state_dict()[name], tensor), name
    noise_layers = [module for module in built if isinstance(module, RandomAffineNoise)]
    assert len(noise_layers) == (0 if noise is None else 3)
    for layer, original in zip(noise_layers, (m for m in model if isinstance(m, RandomAffineNoise)), strict=True):
        assert torch.equal(layer.generator.get_state(), original.generator.get_state())


def test_noise_needs_batchnorm(data):
    with pytest.raises(ValueError, match="bn=True"):
        figure1.tracked_run(False, data, num_steps=10, seed=0, noise=NoiseDistribution())
