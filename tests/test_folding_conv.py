"""fold_batchnorm on convolutions: a BatchNorm2d folded into the convolution before it for any kernel size, stride,
padding and padding mode, dilation and groups, with or without bias; into the next one where that is exact; and
refused, with the reason, where it is not or where the model is in train mode.

Outputs are compared with the eval-mode model within rounding_tolerance: in float64 (about 1e-9 of the outputs'
scale, so any slip in the algebra shows) and in float32; PyTorch's own fuse_conv_bn_eval is the second reference.
"""

import copy
import random

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bnlib.models import make_cnn
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.stats.folding import fold_batchnorm
from bnlib.stats.tolerances import rounding_tolerance
from tests.support.moved_batchnorm import with_moved_batchnorm


def random_conv(rng, in_channels=None):
    """A Conv2d with options drawn by `rng`: kernel, stride, padding and its mode, dilation, groups, bias."""
    groups = rng.choice([1, 2, 4])
    in_channels = in_channels or groups * rng.choice([1, 2, 3])
    kernel = rng.choice([1, 2, 3, (3, 5), (1, 4)])
    padding_mode = rng.choice(["zeros", "reflect", "replicate", "circular"])
    padding = rng.choice([0, 1, (2, 1), "same"] if padding_mode == "zeros" else [0, 1, (2, 1)])
    stride = 1 if padding == "same" else rng.choice([1, 2, (2, 1)])
    return nn.Conv2d(in_channels, groups * rng.choice([1, 2, 3]), kernel, stride=stride, padding=padding,
                     dilation=rng.choice([1, 2]), groups=groups, bias=rng.random() < 0.5, padding_mode=padding_mode)


def moved(batchnorm, seed):
    """`batchnorm` with running statistics, gamma and beta moved off their defaults, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        size = batchnorm.num_features
        batchnorm.running_mean.copy_(torch.randn(size, generator=generator) * 2)
        batchnorm.running_var.copy_(torch.rand(size, generator=generator) * 3 + 0.01)
        batchnorm.weight.copy_(torch.randn(size, generator=generator))
        batchnorm.bias.copy_(torch.randn(size, generator=generator))
    return batchnorm.eval()


def assert_same_outputs(model, folded, inputs):
    """folded(inputs) equals model(inputs) within rounding_tolerance, in float64 and in float32."""
    with torch.no_grad():
        exact = copy.deepcopy(model).double()
        gap = (fold_batchnorm(exact)(inputs.double()) - exact(inputs.double())).abs()
        assert (gap <= rounding_tolerance(exact, inputs)).all(), f"float64: {gap.max():.1e}"
        gap = (folded(inputs) - model(inputs)).abs()
        assert (gap <= rounding_tolerance(model, inputs)).all(), f"float32: {gap.max():.1e}"


@pytest.mark.parametrize("seed", range(40))
def test_a_batchnorm_after_a_random_convolution_folds_into_it(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    conv = random_conv(rng)
    model = nn.Sequential(conv, moved(nn.BatchNorm2d(conv.out_channels), seed)).eval()
    folded = fold_batchnorm(model)
    (layer,) = folded  # one Conv2d, no BatchNorm
    assert isinstance(layer, nn.Conv2d) and layer.bias is not None
    for option in ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode"):
        assert getattr(layer, option) == getattr(conv, option), option
    inputs = torch.randn(3, conv.in_channels, 11, 12) + 0.5
    assert_same_outputs(model, folded, inputs)
    with torch.no_grad():
        fused = fuse_conv_bn_eval(copy.deepcopy(conv), copy.deepcopy(model[1]))
        gap = (folded(inputs) - fused(inputs)).abs()
    assert (gap <= rounding_tolerance(model, inputs)).all()


@pytest.mark.parametrize("seed", range(20))
def test_a_batchnorm_before_a_convolution_without_zero_padding_folds_into_it(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    conv = random_conv(rng)
    if conv.padding_mode == "zeros":
        conv.padding, conv._reversed_padding_repeated_twice = (0, 0), [0, 0, 0, 0]  # zero padding is the other test
    model = nn.Sequential(moved(nn.BatchNorm2d(conv.in_channels), seed), nn.Dropout2d(0.3), conv).eval()
    folded = fold_batchnorm(model)
    assert [type(layer) for layer in folded] == [nn.Dropout2d, nn.Conv2d]
    assert_same_outputs(model, folded, torch.randn(3, conv.in_channels, 11, 12) + 0.5)


@pytest.mark.parametrize("padding", [1, "same"])
def test_a_batchnorm_before_a_zero_padded_convolution_is_refused(padding):
    model = nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 6, 3, padding=padding)).eval()
    with pytest.raises(ValueError, match="cannot fold BatchNorm layer 0 into Conv2d 1: that convolution pads with"):
        fold_batchnorm(model)
    model[1].padding_mode = "replicate"  # the border copies the shifted values: exact again
    assert [type(layer) for layer in fold_batchnorm(model)] == [nn.Conv2d]


def test_a_model_in_train_mode_is_refused_with_model_eval_named():
    model = make_cnn(bn="before")
    with pytest.raises(ValueError, match=r"call model\.eval\(\) first \(the model is in train mode"):
        fold_batchnorm(model.train())
    model.eval()
    model[1].train()  # one layer left in train mode
    with pytest.raises(ValueError, match=r"call model\.eval\(\) first \(1 is in train mode"):
        fold_batchnorm(model)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):  # PyTorch's own refusal
        fuse_conv_bn_eval(model[0], model[1])


def briefly_run(model, seed=0):
    """`model` with its BatchNorm layers moved off their defaults, in eval mode."""
    torch.manual_seed(seed)
    return with_moved_batchnorm(model)


def test_make_cnn_with_batchnorm_before_relu_folds_to_a_cnn_without_batchnorm():
    model = briefly_run(make_cnn(bn="before"))
    folded = fold_batchnorm(model)
    assert not batchnorm_layers(folded) and len(folded) == len(model) - 2 and not folded.training
    assert [type(layer).__name__ for layer in folded][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert_same_outputs(model, folded, torch.rand(50, 1, 28, 28))


def test_batchnorm_after_relu_and_before_max_pooling_is_refused():
    model = briefly_run(make_cnn(bn="after"))
    with pytest.raises(ValueError, match=r"cannot fold BatchNorm layer 2: MaxPool2d \(3\) comes between"):
        fold_batchnorm(model)


def test_conv1d_folds_too_and_the_tolerance_catches_a_slip_in_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), moved(nn.BatchNorm1d(4), 0)).eval()
    inputs = torch.randn(5, 3, 9)
    assert_same_outputs(model, fold_batchnorm(model), inputs)
    exact = copy.deepcopy(model).double()
    folded = fold_batchnorm(exact)
    with torch.no_grad():
        exact[1].running_var.mul_(255 / 256)  # the biased instead of the unbiased variance of 256 values
        assert ((folded(inputs.double()) - exact(inputs.double())).abs() > rounding_tolerance(exact, inputs)).any()
