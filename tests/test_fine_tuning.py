"""What each freezing choice lets change when fine-tuning, and the cached fine-tuning run."""

import copy

import pytest
import torch

from bnlib.cache import CACHE_DIR_ENV
from bnlib.models import first_linear, freeze_batchnorm, make_mlp, output_layer
from bnlib.runs import CachedRun
from bnlib.stats.batchnorm import batchnorm_layers, first_batchnorm
from bnlib.studies.fine_tuning import (
    FINE_TUNING_SHIFT,
    FREEZE_CHOICES,
    compare_test_accuracies,
    fine_tuned_run,
    one_training_step,
    prepare_fine_tuning,
)
from bnlib.studies.shift import shift_images
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
    tuned = fine_tuned_run(pretrained, choice, FINE_TUNING_SHIFT, **arguments)
    assert _changed(pretrained.model, tuned.model) == expected
    assert not tuned.cached and not pretrained.model.training
    assert set(tuned.record) == {"clean_test_acc", "shifted_test_acc"}
    again = fine_tuned_run(pretrained, choice, FINE_TUNING_SHIFT, **arguments)
    assert again.cached and again.record == tuned.record
    assert _changed(tuned.model, again.model) == set()
    assert all(parameter.requires_grad == (choice == "full fine-tuning") for parameter in again.model[1].parameters())
    other = CachedRun(pretrained.model, {}, {}, cached=False, key="another pretrained run")
    assert not fine_tuned_run(other, choice, FINE_TUNING_SHIFT, **arguments).cached  # the pretrained run is in the key


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


def test_the_demo_shift_is_repaired_by_re_estimated_statistics():
    # Lower contrast maps each first-layer unit (no bias) affinely: z -> 0.5 z + c. BatchNorm with statistics
    # re-estimated on the shifted images then gives, in eval mode, what it gives on clean images.
    torch.manual_seed(0)
    model = make_mlp((16, 8), bn="before")
    clean = torch.rand(256, 1, 28, 28)
    outputs = {}
    for shift in ("clean", FINE_TUNING_SHIFT):
        adapted = copy.deepcopy(model)
        for _, layer in batchnorm_layers(adapted):
            layer.momentum = None  # cumulative average: one pass sets the statistics of these images
        with torch.no_grad():
            adapted.train()(shift_images(clean, shift))
            outputs[shift] = adapted.eval()(shift_images(clean, shift))
    torch.testing.assert_close(outputs[FINE_TUNING_SHIFT], outputs["clean"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("first", "second", "num_images", "expected"),
    [
        # sqrt((0.9 * 0.1 + 0.8 * 0.2) / 400) = 0.025: 2.5 points; 10 points is 4 standard errors
        (90.0, 80.0, 400, (10.0, 2.5, "higher")),
        (80.0, 90.0, 400, (-10.0, 2.5, "lower")),
        # at n = 100 the error is 5 points and 10 points is exactly 2 errors: not more than 2, so no verdict
        (90.0, 80.0, 100, (10.0, 5.0, "within sampling error")),
        (50.0, 50.0, 10_000, (0.0, 100 * (0.5 / 10_000) ** 0.5, "within sampling error")),
    ],
)
def test_compare_test_accuracies(first, second, num_images, expected):
    difference, error, verdict = compare_test_accuracies(first, second, num_images)
    assert difference == pytest.approx(expected[0]) and error == pytest.approx(expected[1]) and verdict == expected[2]


def test_compare_test_accuracies_refuses_fractions_above_100():
    with pytest.raises(ValueError, match="first"):
        compare_test_accuracies(120.0, 50.0, 100)
