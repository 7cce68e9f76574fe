"""What each freezing choice lets change when fine-tuning, and the cached fine-tuning run."""

import copy

import pytest
import torch

from bnlib.cache import CACHE_DIR_ENV
from bnlib.models import first_linear, freeze_batchnorm, make_mlp, output_layer
from bnlib.runs import CachedRun
from bnlib.stats.batchnorm import batchnorm_layers, first_batchnorm
from bnlib.studies.fine_tuning import FREEZE_CHOICES, fine_tuned_run, one_training_step, prepare_fine_tuning
from tests.support.splits import random_splits


@pytest.fixture
def tiny_data():
    return random_splits(64, 16, 32)


def _changed(before, after):
    return {name for name, tensor in before.state_dict().items() if not torch.equal(tensor, after.state_dict()[name])}


RUNNING = {"2.running_mean", "2.running_var", "2.num_batches_tracked",
           "5.running_mean", "5.running_var", "5.num_batches_tracked"}  # fmt: skip
GAMMA_BETA = {"2.weight", "2.bias", "5.weight", "5.bias"}
HEAD = {"7.weight", "7.bias"}


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("naive freeze", RUNNING | HEAD),
        ("BatchNorm frozen", HEAD),
        ("full fine-tuning", RUNNING | GAMMA_BETA | HEAD | {"1.weight", "4.weight"}),
    ],
)
def test_what_each_choice_changes(tiny_data, tmp_path, monkeypatch, choice, expected):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    torch.manual_seed(0)
    pretrained = CachedRun(make_mlp(bn="before").eval(), {}, {}, cached=False, key="random init")
    arguments = {"data": tiny_data, "num_labelled": 64, "num_epochs": 2, "batch_size": 16, "learning_rate": 0.1,
                 "seed": 1, "device": "cpu"}  # fmt: skip
    tuned = fine_tuned_run(pretrained, choice, "inverted", **arguments)
    assert _changed(pretrained.model, tuned.model) == expected
    assert not tuned.cached and not pretrained.model.training
    assert set(tuned.record) == {"clean_test_acc", "shifted_test_acc"}
    again = fine_tuned_run(pretrained, choice, "inverted", **arguments)
    assert again.cached and again.record == tuned.record
    assert _changed(tuned.model, again.model) == set()
    assert all(parameter.requires_grad == (choice == "full fine-tuning") for parameter in again.model[1].parameters())
    other = CachedRun(pretrained.model, {}, {}, cached=False, key="another pretrained run")
    assert not fine_tuned_run(other, choice, "inverted", **arguments).cached  # the pretrained run is in the key


def test_prepare_fine_tuning_returns_the_trained_parameters():
    model = make_mlp(bn="before")
    assert [tuple(p.shape) for p in prepare_fine_tuning(model, "naive freeze")] == [(10, 45), (10,)]
    assert sum(p.requires_grad for p in model.parameters()) == 2
    with pytest.raises(ValueError, match="choice must be one of"):
        prepare_fine_tuning(model, "freeze everything")
    assert len(FREEZE_CHOICES) == 3


def test_one_training_step_moves_a_hand_frozen_batchnorm_but_not_a_frozen_one():
    torch.manual_seed(0)
    pretrained = make_mlp((16, 8), bn="before").eval()
    images, labels = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    naive = copy.deepcopy(pretrained).requires_grad_(False)
    output_layer(naive).requires_grad_(True)
    for _, layer in batchnorm_layers(naive):
        layer.eval()  # undone by the step's model.train()
    layer = first_batchnorm(naive)
    with torch.no_grad():  # what PyTorch's rule gives the running mean after one train-mode batch
        batch_mean = first_linear(naive)(images.flatten(1)).mean(0)
    expected = ((1 - layer.momentum) * layer.running_mean + layer.momentum * batch_mean - layer.running_mean)
    changes = one_training_step(naive, images, labels, learning_rate=0.1)
    assert changes["first BatchNorm in train mode"] is True
    torch.testing.assert_close(torch.tensor(changes["max change of running_mean"]), expected.abs().max(),
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    assert changes["max change of weight"] == 0.0 and changes["max change of bias"] == 0.0  # no gradients
    frozen = freeze_batchnorm(copy.deepcopy(pretrained).requires_grad_(False))
    output_layer(frozen).requires_grad_(True)
    changes = one_training_step(frozen, images, labels, learning_rate=0.1)
    assert changes["first BatchNorm in train mode"] is False
    assert all(value == 0.0 for name, value in changes.items() if name.startswith("max change"))
