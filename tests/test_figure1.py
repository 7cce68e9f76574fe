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


def test_relative_movement_divides_by_the_15_to_85_spread():
    base = np.linspace(-1, 1, 201)  # evenly spaced: its 15th and 85th percentiles are exactly -0.7 and 0.7
    samples = base[None, :] + np.array([0.0, 0.0, 1.0, 3.0, 2.0])[:, None]  # the whole distribution moves
    steps = [0, 50, 100, 150, 200]
    run = SimpleNamespace(record={"tracked_steps": steps}, tensors={"unit_inputs": torch.from_numpy(samples)})
    assert figure1.largest_movement(run, after_step=100) == pytest.approx(2.0)  # from +1 to +3
    assert figure1.typical_spread(run, after_step=100) == pytest.approx(1.4)
    assert figure1.relative_movement(run, after_step=100) == pytest.approx(2.0 / 1.4)
    wider = SimpleNamespace(record=run.record, tensors={"unit_inputs": 10 * run.tensors["unit_inputs"]})
    assert figure1.largest_movement(wider, after_step=100) == pytest.approx(20.0)  # ten times as far ...
    assert figure1.relative_movement(wider, after_step=100) == pytest.approx(2.0 / 1.4)  # ... on its own scale, as far


JUMPY = {"accuracy_steps": [0, 100, 200, 300, 400, 500, 600, 700], "test_accuracy": [10, 50, 95, 60, 85, 92, 93, 94]}


def test_smoothed_crossing_does_not_count_a_lucky_measurement():
    assert JUMPY["test_accuracy"][2] >= 90  # a single measurement at step 200 reaches 90 %
    # means of 3: 51.7 (ends at 200), 68.3, 80, 79, 90 (85, 92, 93: ends at 600), 93
    assert figure1.smoothed_crossing(JUMPY, 90.0, window=3) == 600
    assert figure1.smoothed_crossing(JUMPY, 90.0, window=1) == 200  # no smoothing: the first measurement at 90 %
    assert figure1.smoothed_crossing(JUMPY, 99.0, window=3) is None
    assert figure1.smoothed_crossing(JUMPY, 10.0, window=9) is None  # fewer measurements than the window


def test_mean_accuracy_is_the_area_under_the_curve_over_the_steps():
    ramp = {"accuracy_steps": [0, 250, 1000], "test_accuracy": [0.0, 25.0, 100.0]}  # a straight line, uneven steps
    assert figure1.mean_accuracy(ramp) == pytest.approx(50.0)
    fast = {"accuracy_steps": [0, 100, 1000], "test_accuracy": [0.0, 100.0, 100.0]}
    assert figure1.mean_accuracy(fast) == pytest.approx((100 * 50 + 900 * 100) / 1000)  # 95: it got there sooner
    assert figure1.mean_accuracy({"accuracy_steps": [0], "test_accuracy": [42.0]}) == 42.0


def test_final_training_loss():
    assert figure1.final_training_loss({"minibatch_loss": [5.0, 4.0, 1.0, 2.0, 3.0]}, 3) == pytest.approx(2.0)


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
