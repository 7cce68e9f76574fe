"""Batch mates: the batch a notebook builds around one image, and accuracy with model.eval() forgotten."""

import pytest
import torch
from torch import nn

from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.studies.batch_dependence import batch_with, train_mode_accuracy
from bnlib.train import compute_accuracy


def test_batch_with_puts_the_image_first_and_draws_mates_from_the_rest_of_the_pool():
    pool = torch.arange(50.0).reshape(50, 1)
    image = torch.tensor([[-1.0]])
    batch = batch_with(image, pool, 8, torch.Generator().manual_seed(3))
    assert batch.shape == (8, 1) and batch[0].item() == -1.0
    expected = torch.randint(1, 50, (7,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(batch[1:, 0], expected.float())  # the same draw as the generator's: seeded, repeatable
    with pytest.raises(ValueError, match="batch_size"):
        batch_with(image, pool, 1, torch.Generator())


def test_train_mode_accuracy_matches_eval_without_batchnorm_and_leaves_the_model_alone():
    torch.manual_seed(0)
    images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    plain = make_mlp((16,)).eval()
    assert train_mode_accuracy(plain, images, labels, 8) == compute_accuracy(plain, TensorLoader(images, labels, 8))
    model = make_mlp((16,), bn="before").eval()
    buffers = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    accuracy = train_mode_accuracy(model, images, labels, 64)
    assert all(torch.equal(buffers[name], tensor) for name, tensor in model.state_dict().items())
    assert not model.training
    # One batch of 64 in train mode is eval mode with that batch's own (biased) statistics in the layer.
    norm = next(layer for layer in model if isinstance(layer, nn.BatchNorm1d))
    with torch.no_grad():
        z = model[1](images.flatten(1))
        norm.running_mean.copy_(z.mean(0))
        norm.running_var.copy_(z.var(0, unbiased=False))
    assert accuracy == compute_accuracy(model, TensorLoader(images, labels, 64))
