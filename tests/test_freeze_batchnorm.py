"""freeze_batchnorm against the naive freeze: running statistics, gamma and beta, model.train(), deepcopy."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib.models import FrozenBatchNorm1d, freeze_batchnorm, make_mlp
from bnlib.stats.sync_batchnorm import convert_to_all_reduce_batchnorm


def _batchnorms(model):
    return [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def _state(model):
    return {key: value.clone() for key, value in model.state_dict().items()}


def _train_steps(model, steps=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for _ in range(steps):
        images = torch.rand(16, 1, 28, 28, generator=generator)
        labels = torch.randint(0, 10, (16,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return model


def _moved(before, model, suffixes):
    after = model.state_dict()
    return {key for key in before if key.endswith(suffixes) and not torch.equal(before[key], after[key])}


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def test_naive_freeze_moves_running_statistics_and_model_train_undoes_bn_eval():
    torch.manual_seed(0)
    model = make_mlp(bn="before")
    model.requires_grad_(False)
    model[-1].requires_grad_(True)  # only the output layer should train
    for batchnorm in _batchnorms(model):
        batchnorm.eval()
    before = _state(model)
    _train_steps(model)  # calls model.train(), which puts the BatchNorms back in train mode
    assert all(batchnorm.training for batchnorm in _batchnorms(model))
    assert _moved(before, model, ("2.weight", "2.bias", "5.weight", "5.bias")) == set()  # gamma, beta frozen
    assert {"2.running_mean", "2.running_var", "5.running_mean", "5.running_var"} <= _moved(before, model, BUFFERS)


def test_freeze_batchnorm_keeps_gamma_beta_and_buffers_through_train_steps_and_deepcopy():
    torch.manual_seed(1)
    model = _train_steps(make_mlp(bn="before"))  # buffers away from their defaults
    assert freeze_batchnorm(model) is model
    before = _state(model)
    copied = copy.deepcopy(model)
    for trained in (model, copied):
        _train_steps(trained, seed=2)
        assert not any(batchnorm.training for batchnorm in _batchnorms(trained))
        assert _moved(before, trained, (*BUFFERS, "2.weight", "2.bias", "5.weight", "5.bias")) == set()
        assert _moved(before, trained, ("1.weight", "4.weight", "7.weight", "7.bias")) == {
            "1.weight", "4.weight", "7.weight", "7.bias"}  # the other layers train
    assert set(model.state_dict()) == set(before)  # same keys: checkpoints load either way


def test_frozen_layer_in_train_mode_computes_what_eval_mode_computes():
    torch.manual_seed(3)
    model = _train_steps(make_mlp(bn="before")).eval()
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        expected = model(images)
        torch.testing.assert_close(freeze_batchnorm(model).train()(images), expected, rtol=0, atol=0)
        torch.testing.assert_close(model[2].train()(torch.ones(1, 75)), model[2].eval()(torch.ones(1, 75)))


def test_conv_batchnorm_and_repr():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.rand(4, 1, 6, 6))
    freeze_batchnorm(model).train()
    before = _state(model)
    model(torch.rand(4, 1, 6, 6))
    assert _moved(before, model, BUFFERS) == set()
    assert "FrozenBatchNorm2d(4" in repr(model)
    assert isinstance(freeze_batchnorm(make_mlp(bn="after"))[3], FrozenBatchNorm1d)


def test_other_batchnorm_types_are_refused():
    with pytest.raises(TypeError, match="freeze_batchnorm handles nn.BatchNorm1d/2d/3d, got AllReduceBatchNorm1d"):
        freeze_batchnorm(convert_to_all_reduce_batchnorm(make_mlp(bn="before")))
