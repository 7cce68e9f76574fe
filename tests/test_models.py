"""bnlib.models: make_mlp's every option and bad option, and mlp_arguments, the model part of the cache key."""

import inspect
import json

import pytest
import torch
from torch import nn

from bnlib.models import count_parameters, first_linear, linear_bias, make_mlp, mlp_arguments, output_layer


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


def linear_biases(model):
    return [layer.bias is not None for layer in model if isinstance(layer, nn.Linear)]


@pytest.mark.parametrize(
    ("options", "norm_type", "hidden_biases"),
    [
        ({"bn": "before"}, nn.BatchNorm1d, [False, False]),  # BatchNorm's beta makes the bias redundant
        ({"bn": "before", "norm": "layer"}, nn.LayerNorm, [True, True]),  # normalizes over units: bias not constant
        ({"bn": "before", "norm": "group"}, nn.GroupNorm, [True, True]),
        ({"bn": "after"}, nn.BatchNorm1d, [True, True]),  # the ReLU sits between: the bias shifts what it clips
        ({"bn": "after", "norm": "group"}, nn.GroupNorm, [True, True]),
    ],
)
def test_the_bias_rule_drops_the_bias_only_right_before_batchnorm(options, norm_type, hidden_biases):
    model = make_mlp(**options)
    assert linear_biases(model) == [*hidden_biases, True]
    norms = [layer for layer in model if isinstance(layer, norm_type)]
    assert len(norms) == 2
    position = 2 if options["bn"] == "before" else 3  # right after the Linear, or after the activation
    assert model[position] is norms[0]


def test_layer_and_group_norm_normalize_over_the_units():
    group = make_mlp(hidden=(6,), in_features=4, bn="before", norm="group", groups=3)
    assert (group[2].num_groups, group[2].num_channels) == (3, 6)
    layer = make_mlp(hidden=(6,), in_features=4, bn="before", norm="layer")
    assert layer[2].normalized_shape == (6,)
    # LayerNorm works on a batch of one (BatchNorm in train mode cannot): its statistics are per example.
    assert layer.train()(torch.randn(1, 4)).shape == (1, 10)


@pytest.mark.parametrize("hidden", [(75, 44), (7,)])
def test_groups_must_divide_every_width(hidden):
    with pytest.raises(ValueError, match=r"^groups must divide every hidden width"):
        make_mlp(hidden, bn="before", norm="group", groups=5)
    make_mlp(hidden, bn="before", norm="batch", groups=5)  # groups only matters for GroupNorm


@pytest.mark.parametrize("init_std", [0.01, 0.2])
def test_init_std_draws_weights_with_that_standard_deviation(init_std):
    torch.manual_seed(0)
    model = make_mlp(init_std=init_std)
    for layer in (layer for layer in model if isinstance(layer, nn.Linear)):
        weight = layer.weight.detach()
        # The sample std of n normal draws has a relative standard error of about 1 / sqrt(2n);
        # 5 of those (n = 450 for the smallest layer: 17 %) is a failure rate far below one in a million.
        tolerance = 5 / (2 * weight.numel()) ** 0.5
        assert abs(weight.std().item() / init_std - 1) < tolerance
        assert abs(weight.mean().item()) < 5 * init_std / weight.numel() ** 0.5
    default = make_mlp()[1].weight.detach()
    assert default.abs().max() <= 1 / 784**0.5  # PyTorch's default: uniform within ±1/sqrt(fan_in)


def test_zero_bias_sets_every_linear_bias_to_zero():
    model = make_mlp(bn="after", zero_bias=True)
    assert all(torch.count_nonzero(layer.bias) == 0 for layer in model if isinstance(layer, nn.Linear))
    assert torch.count_nonzero(make_mlp(bn="after")[1].bias) > 0
    assert make_mlp(bn="before", zero_bias=True)[1].bias is None  # nothing to zero where the rule dropped it


def test_same_seed_same_model():
    torch.manual_seed(3)
    first = make_mlp(bn="before", init_std=0.1)
    torch.manual_seed(3)
    again = make_mlp(bn="before", init_std=0.1)
    for name, tensor in first.state_dict().items():
        torch.testing.assert_close(tensor, again.state_dict()[name], rtol=0, atol=0)


def test_mlp_arguments_resolves_every_default():
    defaults = mlp_arguments()
    assert defaults == {
        "hidden": [75, 45],
        "bn": None,
        "norm": "batch",
        "groups": 5,
        "bias": None,
        "dropout": 0.0,
        "activation": "relu",
        "in_features": 784,
        "num_classes": 10,
        "init_std": None,
        "zero_bias": False,
    }
    assert json.loads(json.dumps(defaults)) == defaults  # JSON-ready
    assert mlp_arguments(hidden=(75, 45), dropout=0) == defaults  # equal models, equal keys


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hidden", (32,)),
        ("bn", "before"),
        ("norm", "layer"),
        ("groups", 3),
        ("bias", True),
        ("dropout", 0.5),
        ("activation", "tanh"),
        ("in_features", 100),
        ("num_classes", 5),
        ("init_std", 0.1),
        ("zero_bias", True),
    ],
)
def test_mlp_arguments_changes_with_every_argument(name, value):
    changed = mlp_arguments(**{name: value})
    assert changed != mlp_arguments()
    assert {key for key in changed if changed[key] != mlp_arguments()[key]} == {name}


def test_every_make_mlp_argument_is_in_mlp_arguments():
    assert list(mlp_arguments()) == list(inspect.signature(make_mlp).parameters)
    with pytest.raises(TypeError, match="colour"):
        mlp_arguments(colour="red")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"bn": "middle"}, "bn"),
        ({"norm": "instance"}, "norm"),
        ({"groups": 0}, "groups"),
        ({"bias": 1}, "bias"),
        ({"activation": "gelu"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": "0.5"}, "dropout"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": 75}, "hidden"),
        ({"hidden": (75, 0)}, r"hidden\[1\]"),
        ({"in_features": 0}, "in_features"),
        ({"num_classes": 1.5}, "num_classes"),
        ({"init_std": 0.0}, "init_std"),
        ({"init_std": True}, "init_std"),
        ({"zero_bias": 0}, "zero_bias"),
    ],
)
def test_bad_options_name_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        make_mlp(**kwargs)
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        mlp_arguments(**kwargs)


def test_linear_bias_is_the_bias_or_zeros_giving_the_same_map():
    with_bias, without_bias = nn.Linear(3, 2), nn.Linear(3, 2, bias=False).double()
    assert linear_bias(with_bias) is with_bias.bias
    zeros = linear_bias(without_bias)
    assert torch.equal(zeros, torch.zeros(2, dtype=torch.float64)) and zeros.dtype == without_bias.weight.dtype
    inputs = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(without_bias(inputs), inputs @ without_bias.weight.T + zeros, rtol=0, atol=0)


def test_first_linear_output_layer_and_first_batchnorm_name_layers_by_role():
    from bnlib.stats.batchnorm import first_batchnorm

    model = make_mlp((16, 8), bn="after")
    linears = [module for module in model if isinstance(module, nn.Linear)]
    assert first_linear(model) is linears[0] and output_layer(model) is linears[-1]
    assert output_layer(model).out_features == 10 and first_linear(model).in_features == 784
    assert first_batchnorm(model) is next(module for module in model if isinstance(module, nn.BatchNorm1d))
    with pytest.raises(ValueError, match="no BatchNorm"):
        first_batchnorm(make_mlp((16,)))
