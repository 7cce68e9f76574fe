"""What each freezing choice lets change when fine-tuning, and the cached fine-tuning run."""

import pytest
import torch

from bnlib.models import make_mlp
from bnlib.runs import CachedRun
from bnlib.studies.fine_tuning import FREEZE_CHOICES, fine_tuned_run, prepare_fine_tuning
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
    monkeypatch.setenv("BNLIB_CACHE_DIR", str(tmp_path))
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
