"""The per-device BatchNorm simulation against nn.BatchNorm1d run on each chunk, and the converted model."""

import copy

import pytest
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.studies.devices import DeviceSplitBatchNorm1d, split_batchnorm


def _trained_like(layer):
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
        layer.running_mean.uniform_(-1, 1)
        layer.running_var.uniform_(0.5, 2)
    return layer


@pytest.mark.parametrize("batch_size", [12, 13])
def test_each_chunk_is_normalized_like_its_own_batchnorm(batch_size):
    torch.manual_seed(0)
    reference = _trained_like(nn.BatchNorm1d(5))
    split = DeviceSplitBatchNorm1d(5, devices=3)
    split.load_state_dict(reference.state_dict())
    inputs = torch.randn(batch_size, 5) * 3 + 1
    chunks = inputs.tensor_split(3)
    expected = torch.cat([copy.deepcopy(reference).train()(chunk) for chunk in chunks])
    torch.testing.assert_close(split.train()(inputs), expected, rtol=1e-5, atol=1e-6)
    rank0 = reference.train()
    rank0(chunks[0])  # the running statistics follow the first chunk only (rank 0's buffers are broadcast)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(split, name), getattr(rank0, name), rtol=1e-6, atol=1e-7)


def test_split_differs_from_whole_batch_in_train_mode_and_not_in_eval_mode():
    torch.manual_seed(1)
    model = make_mlp((8,), bn="before")
    split = split_batchnorm(model, devices=4)
    inputs = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(split.eval()(inputs), model.eval()(inputs), rtol=1e-6, atol=1e-6)
    assert not torch.allclose(split.train()(inputs), model.train()(inputs), atol=1e-3)


def test_one_device_is_plain_batchnorm():
    torch.manual_seed(2)
    model = make_mlp((8,), bn="before")
    split = split_batchnorm(model, devices=1)
    inputs = torch.rand(10, 1, 28, 28)
    torch.testing.assert_close(split.train()(inputs), model.train()(inputs), rtol=1e-6, atol=1e-6)


def test_conversion_replaces_every_batchnorm1d_and_keeps_the_original():
    model = make_mlp(bn="before")
    split = split_batchnorm(model, devices=2)
    kinds = [type(module) for module in split.modules() if isinstance(module, nn.BatchNorm1d)]
    assert kinds == [DeviceSplitBatchNorm1d, DeviceSplitBatchNorm1d]
    assert "devices=2" in repr(split)
    assert all(type(module) is not DeviceSplitBatchNorm1d for module in model.modules())


def test_bad_arguments():
    with pytest.raises(ValueError, match="devices must be an integer >= 1, got 0"):
        split_batchnorm(make_mlp(bn="before"), devices=0)
    layer = DeviceSplitBatchNorm1d(3, devices=4).train()
    with pytest.raises(ValueError, match="a batch of 3 cannot be split over 4 devices"):
        layer(torch.randn(3, 3))
