"""bnlib.models.make_cnn: make_mlp's rules for bn, norm, groups and bias on a small CNN, and its argument errors."""

import json

import pytest
import torch
from torch import nn

from bnlib.models import cnn_arguments, count_parameters, make_cnn, make_mlp
from bnlib.runs import cnn_spec


def layer_types(model):
    return [type(layer).__name__ for layer in model]


def test_the_default_cnn_is_two_conv_blocks_and_a_linear():
    model = make_cnn()
    assert layer_types(model) == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    convs = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    assert [(conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) for conv in convs] == [
        (1, 8, (3, 3), (1, 1)), (8, 16, (3, 3), (1, 1))]
    assert all(conv.bias is not None for conv in convs)
    assert model[-1].in_features == 16 * 7 * 7  # 28 -> 14 -> 7
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert count_parameters(model) == (8 * 9 + 8) + (16 * 8 * 9 + 16) + (16 * 7 * 7 * 10 + 10)


def test_bn_before_drops_the_bias_exactly_where_batchnorm_follows():
    model = make_cnn(bn="before")
    assert layer_types(model)[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert [layer.bias is None for layer in model if isinstance(layer, (nn.Conv2d, nn.Linear))] == [True, True, False]
    assert count_parameters(model) == count_parameters(make_cnn()) - (8 + 16) + 2 * (8 + 16)  # no bias; gamma, beta


@pytest.mark.parametrize(("options", "expected"), [
    ({"bn": "after"}, ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d"]),
    ({"bn": "before", "norm": "layer"}, ["Conv2d", "GroupNorm", "ReLU", "MaxPool2d"]),
    ({"bn": "before", "norm": "group", "groups": 8}, ["Conv2d", "GroupNorm", "ReLU", "MaxPool2d"]),
])
def test_a_bias_stays_unless_a_batchnorm_directly_follows(options, expected):
    model = make_cnn(**options)
    assert layer_types(model)[:4] == expected
    assert model[0].bias is not None  # as make_mlp: only BatchNorm directly after makes the bias redundant
    assert make_mlp(**options, hidden=(8, 16))[1].bias is not None


def test_the_norm_options_build_the_layers_they_name():
    layer = make_cnn(bn="before", norm="layer")[1]
    assert (layer.num_groups, layer.num_channels) == (1, 8)
    assert make_cnn(bn="before", norm="group", groups=2)[5].num_groups == 2
    assert make_cnn(bn="before", bias=True)[0].bias is not None and make_cnn(bias=False)[0].bias is None


def test_sizes_follow_the_arguments():
    model = make_cnn((4, 6, 5), in_channels=3, image_size=16, num_classes=4, activation="tanh")
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 4)
    assert model[-1].in_features == 5 * 2 * 2 and "Tanh" in layer_types(model)
    assert make_cnn((4,), image_size=5)[-1].in_features == 4 * 2 * 2  # 5 -> 2: pooling rounds down


@pytest.mark.parametrize(("options", "message"), [
    ({"channels": ()}, r"^channels must be a non-empty sequence of positive integers, got \(\)"),
    ({"channels": (8, 0)}, r"^channels\[1\] must be an integer >= 1, got 0"),
    ({"channels": "8"}, r"^channels must be a non-empty sequence"),
    ({"bn": "middle"}, r"^bn must be one of \(None, 'before', 'after'\), got 'middle'"),
    ({"norm": "instance"}, r"^norm must be one of \('batch', 'layer', 'group'\), got 'instance'"),
    ({"bias": 1}, r"^bias must be one of \(None, True, False\), got 1"),
    ({"activation": "gelu"}, r"^activation must be one of"),
    ({"in_channels": 0}, r"^in_channels must be an integer >= 1, got 0"),
    ({"num_classes": 2.0}, r"^num_classes must be an integer >= 1, got 2.0"),
    ({"bn": "before", "norm": "group", "groups": 3}, r"^groups must divide every channel count, got groups=3 for \[8,"),
    ({"image_size": 3}, r"^image_size must be at least 2 \*\* len\(channels\) = 4 .*got 3"),
])
def test_bad_arguments_name_the_parameter(options, message):
    with pytest.raises(ValueError, match=message):
        make_cnn(**options)
    if "image_size" not in options:
        with pytest.raises(ValueError, match=message):
            cnn_arguments(**options)


def test_cnn_arguments_key_a_run():
    arguments = cnn_arguments(bn="before", channels=(8, 16))
    assert arguments["channels"] == [8, 16] and arguments["groups"] == 4 and arguments["bias"] is None
    assert json.loads(json.dumps(arguments)) == arguments
    with pytest.raises(TypeError):
        cnn_arguments(hidden=(8,))
    spec = cnn_spec({"bn": "before"})
    assert spec.describe() == "make_cnn(bn='before')"
    assert str(spec.build(seed=0)) == spec.key()["structure"]
    torch.testing.assert_close(spec.build(seed=0).state_dict(), spec.build(seed=0).state_dict(), rtol=0, atol=0)
