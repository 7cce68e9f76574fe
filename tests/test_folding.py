"""fold_batchnorm: BatchNorm folded into the Linear before it, or after the activation into the next Linear.

The folded model is compared with the original in float64, where the tolerance from rounding_tolerance
is about 1e-9 of the logits' scale (so any slip in the algebra shows), and in float32 under 1, 2 and
4 threads, where each model sums in its own order and only the rounding bound can be asked for.
"""

import copy
import math

import pytest
import torch
from torch import nn

from bnlib.data import lecture_loaders, load_mnist
from bnlib.models import make_mlp
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.folding import fold_batchnorm
from bnlib.stats.tolerances import rounding_tolerance
from bnlib.train import train_model
from tests.support.moved_batchnorm import with_moved_batchnorm


def trained_briefly(bn, dropout, seed=0):
    """make_mlp((32, 16)) with BN before or after the activation, its buffers and gammas moved off their defaults."""
    torch.manual_seed(seed)
    return with_moved_batchnorm(make_mlp((32, 16), bn=bn, dropout=dropout), batch_size=64)


def assert_folds_exactly(model, inputs):
    """Folded and original agree within rounding_tolerance in float64 (and float32); the original is left alone."""
    before = copy.deepcopy(model.state_dict())
    exact = copy.deepcopy(model).double()
    with torch.no_grad():
        difference = (fold_batchnorm(exact)(inputs.double()) - exact(inputs.double())).abs()
        assert (difference <= rounding_tolerance(exact, inputs)).all()
        difference = (fold_batchnorm(model)(inputs) - model(inputs)).abs()
        assert (difference <= rounding_tolerance(model, inputs)).all()
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)
    assert batchnorm_layers(model) and not model.training and not any(module.training for module in model.modules())


@pytest.mark.parametrize("dropout", [0.0, 0.3], ids=["no dropout", "dropout"])
@pytest.mark.parametrize("bn", ["before", "after"])
def test_fold_keeps_eval_outputs_and_removes_every_batchnorm(bn, dropout):
    model = trained_briefly(bn, dropout)
    folded = fold_batchnorm(model)
    assert not batchnorm_layers(folded) and not folded.training
    assert sum(isinstance(layer, nn.Linear) for layer in folded) == 3
    assert len(folded) == len(model) - 2
    assert_folds_exactly(model, torch.rand(200, 1, 28, 28))


def test_fold_after_the_activation_scales_the_next_linears_columns():
    model = trained_briefly("after", 0.3)
    batchnorm, dropout, following = model[3], model[4], model[5]  # Linear, ReLU, BatchNorm1d, Dropout, Linear
    assert isinstance(batchnorm, nn.BatchNorm1d) and isinstance(dropout, nn.Dropout)
    folded = fold_batchnorm(model)
    assert [type(layer).__name__ for layer in folded] == [
        "Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"
    ]
    scale = batchnorm.weight / torch.sqrt(batchnorm.running_var + batchnorm.eps)
    torch.testing.assert_close(folded[4].weight, following.weight * scale, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(folded[1].weight, model[1].weight, rtol=0, atol=0)  # the Linear before is unchanged


def test_fold_handles_a_bias_no_affine_and_a_batchnorm_first():
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 4), nn.BatchNorm1d(4, affine=False), nn.Tanh(),
                          nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 6) * 3 + 1)
        model[4][1].weight.uniform_(0.5, 2)
        model[4][1].bias.normal_()
    model.eval()
    assert [type(layer).__name__ for layer in fold_batchnorm(model)] == ["Linear", "Tanh", "Linear"]
    assert_folds_exactly(model, torch.randn(20, 6))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3)], "no Linear or convolution before or after it"),
        ([nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)], "ReLU .3. comes between"),
        ([nn.BatchNorm1d(4), nn.BatchNorm1d(4), nn.Linear(4, 2)], "follows BatchNorm 0 directly"),
    ],
    ids=["last", "activation after", "two in a row"],
)
def test_fold_rejects_a_batchnorm_no_linear_can_absorb(layers, message):
    with pytest.raises(ValueError, match=f"cannot fold BatchNorm layer .*{message}"):
        fold_batchnorm(nn.Sequential(*layers).eval())


def test_fold_needs_a_sequential_with_running_statistics():
    with pytest.raises(ValueError, match="Sequential"):
        fold_batchnorm(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False)))


def test_rounding_tolerance_catches_a_small_mistake_in_float64():
    model = copy.deepcopy(trained_briefly("before", 0.0)).double()
    inputs = torch.rand(100, 1, 28, 28, dtype=torch.float64)
    folded = fold_batchnorm(model)
    with torch.no_grad():
        model[2].running_var.mul_(255 / 256)  # the biased instead of the unbiased variance of a batch of 256
        difference = (folded(inputs) - model(inputs)).abs()
    assert (difference > rounding_tolerance(model, inputs)).any()


@pytest.fixture(scope="module")
def lecture_model():
    """The lecture's BN MLP trained as in full mode (seed 123, batch 256, SGD lr 0.1), 630 steps (3 of 50 epochs).

    The rounding bound scales with the magnitudes the trained weights produce, so a shorter run tests the
    same rule; 630 steps already reach the accuracy plateau's order of logits (about 10 to 30). On the
    4,000-image fallback data that takes 42 epochs.
    """
    train, valid, _ = lecture_loaders(load_mnist())
    torch.manual_seed(123)
    model = make_mlp(bn="before")
    num_epochs = math.ceil(630 / len(train))
    train_model(model, num_epochs, train, valid, progress=False, device="cpu", seed=123, learning_rate=0.1)
    return model.eval()


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_fold_check_holds_for_the_lecture_model_at_any_thread_count(lecture_model, threads):
    images = load_mnist().split("test")[0]
    tolerance = rounding_tolerance(lecture_model, images)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            folded, original = fold_batchnorm(lecture_model)(images), lecture_model(images)
    finally:
        torch.set_num_threads(before)
    assert original.abs().max() > 10  # trained: logits of the size the notebook's check sees
    assert ((folded - original).abs() <= tolerance).all()
