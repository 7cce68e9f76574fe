"""bnlib.train.train_steps, training by step count: it stops exactly where asked, takes the same steps as
train_one_epoch, and the divergence rule (non-finite, or above 10 x the first loss) stops a run."""

import copy
import math

import pytest
import torch

from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.train import (
    DivergenceCheck,
    History,
    StopTraining,
    evaluation_mode,
    has_diverged,
    train_one_epoch,
    train_steps,
)


@pytest.fixture
def loader(mnist):
    images, labels = mnist.split("train", 320)
    return TensorLoader(images, labels, 64, shuffle=True, seed=0, drop_last=True)  # 5 steps per epoch


def sgd(model, learning_rate=0.1):
    return torch.optim.SGD(model.parameters(), lr=learning_rate)


def test_stops_exactly_at_num_steps_across_epochs(loader):
    torch.manual_seed(0)
    model, seen = make_mlp((16,), bn="before"), []
    history = train_steps(model, loader, sgd(model), 12, device="cpu", on_step=lambda m, step, loss: seen.append(step))
    assert len(history.minibatch_loss) == 12 and seen == list(range(1, 13))


def test_takes_the_same_steps_as_train_one_epoch(loader):
    torch.manual_seed(0)
    model = make_mlp((16,), bn="before")
    twin = copy.deepcopy(model)
    expected = History()
    loader.generator.manual_seed(1)
    train_one_epoch(twin, loader, sgd(twin), "cpu", history=expected)
    loader.generator.manual_seed(1)
    history = train_steps(model, loader, sgd(model), len(loader), device="cpu")
    assert history.minibatch_loss == expected.minibatch_loss  # the same batches and updates, bit for bit
    for name, value in twin.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)


def test_a_callback_ends_training_early(loader):
    model = make_mlp((16,))

    def stop_at_three(model, step, loss):
        if step == 3:
            raise StopTraining

    assert len(train_steps(model, loader, sgd(model), 100, device="cpu", on_step=stop_at_three).minibatch_loss) == 3


@pytest.mark.parametrize(
    ("loss", "diverged"), [(2.3, False), (23.0, False), (23.1, True), (math.inf, True), (math.nan, True)]
)
def test_divergence_rule(loss, diverged):
    assert has_diverged(loss, first_loss=2.3) is diverged


def test_divergence_check_stops_a_run_with_a_huge_learning_rate(loader):
    torch.manual_seed(0)
    model, check = make_mlp((16,)), DivergenceCheck()
    history = train_steps(model, loader, sgd(model, 1e4), 50, device="cpu", on_step=check)
    assert check.diverged_at == len(history.minibatch_loss) < 50
    assert has_diverged(history.minibatch_loss[-1], history.minibatch_loss[0])
    assert not any(has_diverged(loss, history.minibatch_loss[0]) for loss in history.minibatch_loss[:-1])


def test_evaluation_mode_restores_the_mode_after_an_error():
    model = make_mlp((4,), bn="before").train()
    with pytest.raises(RuntimeError), evaluation_mode(model):
        assert not model.training
        raise RuntimeError("inside")
    assert model.training


def test_num_steps_is_checked(loader):
    model = make_mlp((4,))
    with pytest.raises(ValueError, match="num_steps"):
        train_steps(model, loader, sgd(model), 0, device="cpu")
