"""bnlib.studies.bias: the bias before BatchNorm is absorbed by the running mean as PyTorch's rule says."""

import warnings

import pytest
import torch
from torch import nn

from bnlib.data import MNISTSplits
from bnlib.studies.bias import fraction_of, make_bias_pair, trace_bias_pair

SMALL = {"hidden": (8,), "in_features": 6}


def small_data(seed=0, count=320):
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.randn(count, 6, generator=generator), torch.randint(0, 10, (count,), generator=generator)
    return MNISTSplits(train=(images, labels), valid=(images[:64], labels[:64]), test=(images, labels), source="test")


def test_the_pair_has_identical_weights_and_differs_only_in_the_bias():
    pair = make_bias_pair(3, bias_std=2.0, **SMALL)
    with_bias, without_bias = pair["with bias"], pair["without bias"]
    assert without_bias[1].bias is None and isinstance(with_bias[2], nn.BatchNorm1d)
    for name, tensor in without_bias.state_dict().items():
        torch.testing.assert_close(tensor, with_bias.state_dict()[name], rtol=0, atol=0)
    assert with_bias[1].bias.std().item() > 1.0  # drawn from N(0, 2²), far above the default's ±1/sqrt(6)
    torch.testing.assert_close(make_bias_pair(3, bias_std=2.0, **SMALL)["with bias"][1].bias, with_bias[1].bias)


def test_the_running_mean_absorbs_the_bias_by_pytorchs_rule():
    pair = make_bias_pair(0, **SMALL)
    trace = trace_bias_pair(pair, small_data(), batch_size=32, learning_rate=0.1, seed=0, min_steps=60, device="cpu")
    assert len(trace.measured) == 60 and trace.steps.tolist() == list(range(1, 61))  # 6 epochs of 10 batches
    torch.testing.assert_close(trace.expected, 1 - 0.9 ** torch.arange(1, 61, dtype=torch.float32))
    # Both models see the same batches with identical weights: only float error separates measured and expected
    # (running means of size ~1 in float32, eps 1.2e-7, over 60 updates).
    torch.testing.assert_close(trace.measured, trace.expected, rtol=0, atol=1e-5)
    assert trace.running_var_gap < 1e-4  # a shift does not change a variance
    assert trace.logit_gap[-1] < 0.01 * trace.logit_gap.max()  # eval outputs converge as (1 - momentum)^t -> 0
    assert not pair["with bias"].training


def test_models_with_dropout_draw_the_same_masks_so_the_law_still_holds():
    """Trained side by side, the two models must see the same dropout masks, or their batch statistics differ."""
    pair = make_bias_pair(0, dropout=0.5, **SMALL)
    trace = trace_bias_pair(pair, small_data(), batch_size=32, learning_rate=0.1, seed=0, min_steps=30, device="cpu")
    torch.testing.assert_close(trace.measured, trace.expected, rtol=0, atol=1e-5)
    assert trace.running_var_gap < 1e-4


def test_every_hidden_linear_of_the_biased_model_has_a_bias():
    pair = make_bias_pair(3, hidden=(8, 4), in_features=6)
    linears = {name: [layer for layer in model if isinstance(layer, nn.Linear)] for name, model in pair.items()}
    assert all(layer.bias is not None for layer in linears["with bias"])
    assert [layer.bias is None for layer in linears["without bias"]] == [True, True, False]  # the output keeps its bias
    assert linears["with bias"][1].bias.abs().max().item() <= 1 / 8**0.5  # PyTorch's default: U(±1/sqrt(fan_in))


def test_the_offset_is_the_unabsorbed_bias_over_the_running_std():
    pair = make_bias_pair(0, **SMALL)
    bias = pair["with bias"][1].bias.detach().clone()
    trace = trace_bias_pair(pair, small_data(), batch_size=32, learning_rate=0.1, seed=0, min_steps=1, device="cpu")
    assert len(trace.offset) == 10  # one epoch of 10 batches
    norm = pair["with bias"][2]  # after the last step; gamma and running_var are the same in both models
    expected = (norm.weight * bias * 0.9**10 / torch.sqrt(norm.running_var + norm.eps)).abs().max()
    torch.testing.assert_close(trace.offset[-1], expected.detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(trace.running_var[-1], norm.running_var.mean())
    torch.testing.assert_close(trace.gain, trace.logit_gap / trace.offset)


def test_fraction_of_is_the_least_squares_multiple():
    bias = torch.tensor([1.0, -2.0, 0.5])
    differences = torch.stack([0.25 * bias, bias, -bias + torch.tensor([2.0, 1.0, 0.0])])  # last: bias ⟂ offset
    torch.testing.assert_close(fraction_of(differences, bias), torch.tensor([0.25, 1.0, -1.0]))


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [({"min_steps": 0}, "min_steps"), ({"learning_rate": 0.0}, "learning_rate")],
)
def test_bad_arguments_name_the_parameter(arguments, parameter):
    options = {"batch_size": 32, "learning_rate": 0.1, "seed": 0, "device": "cpu", **arguments}
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        trace_bias_pair(make_bias_pair(0, **SMALL), small_data(), **options)
    with pytest.raises(ValueError, match="^bias_std must"):
        make_bias_pair(0, bias_std=0.0)


def test_the_cnn_pair_and_its_cached_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLIB_CACHE_DIR", str(tmp_path))
    from bnlib.models import make_cnn
    from bnlib.studies.bias import cached_bias_trace

    options = {"channels": (4,), "image_size": 6}
    pair = make_bias_pair(0, factory=make_cnn, **options)
    assert pair["without bias"][0].bias is None and isinstance(pair["with bias"][1], nn.BatchNorm2d)
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(96, 1, 6, 6, generator=generator), torch.randint(0, 10, (96,), generator=generator)
    data = MNISTSplits(train=(images, labels), valid=(images[:32], labels[:32]), test=(images, labels), source="t")
    settings = {"seed": 0, "bias_std": 1.0, "batch_size": 32, "learning_rate": 0.1, "min_steps": 30, "device": "cpu"}
    trace = cached_bias_trace(make_cnn, options, data, **settings)
    assert len(trace.measured) == 30  # 10 epochs of 3 batches
    torch.testing.assert_close(trace.measured, trace.expected, rtol=0, atol=1e-5)  # the running mean absorbs b
    assert trace.logit_gap[-1] < 0.2 * trace.logit_gap.max()  # (1 - momentum)^30 = 0.04 of b left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cache warns when it finds the entry but cannot use it
        again = cached_bias_trace(make_cnn, options, data, **settings)  # read back from the cache
    torch.testing.assert_close(again.logit_gap, trace.logit_gap, rtol=0, atol=0)
    assert len(list(tmp_path.glob("*.json"))) == 1
