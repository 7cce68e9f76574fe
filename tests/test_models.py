"""bnlib.models.make_mlp: every option and every bad option."""

import pytest
import torch
from torch import nn

from bnlib.models import count_parameters, make_mlp


def layer_types(model):
    return [type(layer).__name__ for layer in model]


def test_plain_mlp_is_the_lecture_architecture():
    model = make_mlp()
    assert layer_types(model) == ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(layer.in_features, layer.out_features) for layer in model if isinstance(layer, nn.Linear)] == [
        (784, 75),
        (75, 45),
        (45, 10),
    ]
    assert all(layer.bias is not None for layer in model if isinstance(layer, nn.Linear))
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_bn_before_drops_the_redundant_bias():
    model = make_mlp(bn="before")
    assert layer_types(model) == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    assert [layer.bias is None for layer in linears] == [True, True, False]  # the output layer keeps its bias


def test_bn_after_activation_keeps_bias_and_dropout_comes_last():
    model = make_mlp(bn="after", dropout=0.5)
    assert layer_types(model)[1:6] == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert model[1].bias is not None
    assert model[4].p == 0.5


def test_bias_can_be_forced():
    assert make_mlp(bn="before", bias=True)[1].bias is not None
    assert make_mlp(bias=False)[1].bias is None


def test_dropout_and_activation_options():
    assert "Dropout" not in layer_types(make_mlp(dropout=0.0))
    assert layer_types(make_mlp(dropout=0.2)).count("Dropout") == 2
    assert "Tanh" in layer_types(make_mlp(activation="tanh"))
    assert "Sigmoid" in layer_types(make_mlp(activation="sigmoid"))
    model = make_mlp(hidden=(8,), in_features=4, num_classes=3)
    assert model(torch.zeros(2, 4)).shape == (2, 3)


def test_parameter_count_of_bn_model():
    # Linear weights without bias, gamma and beta per BN unit, and the output layer.
    expected = 784 * 75 + 2 * 75 + 75 * 45 + 2 * 45 + 45 * 10 + 10
    assert count_parameters(make_mlp(bn="before")) == expected


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"bn": "middle"}, "bn"),
        ({"activation": "gelu"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": "0.5"}, "dropout"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (75, 0)}, "hidden"),
    ],
)
def test_bad_options_name_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        make_mlp(**kwargs)
