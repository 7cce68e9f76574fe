"""Gradient accumulation against one large batch: equal without BatchNorm, different with it."""

import pytest
import torch

from bnlib.models import make_mlp
from bnlib.studies.accumulation import accumulated_gradient, accumulation_rows


def _batch(size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 1, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)


def test_one_micro_batch_is_autograd_on_the_whole_batch():
    torch.manual_seed(0)
    model = make_mlp((16,), bn="before")
    images, labels = _batch()
    outputs, gradient = accumulated_gradient(model, images, labels, 1)
    loss = torch.nn.functional.cross_entropy(model.train()(images), labels)
    expected = torch.cat([grad.flatten() for grad in torch.autograd.grad(loss, list(model.parameters()))])
    torch.testing.assert_close(gradient, expected, rtol=1e-6, atol=1e-7)
    assert all(parameter.grad is None for parameter in model.parameters())  # the model itself is left alone


def test_accumulation_equals_one_batch_without_batchnorm_only():
    images, labels = _batch()
    rows = {row["model"]: row for row in accumulation_rows({"without": {"hidden": [16]}, "with": {"hidden": [16],
                                                            "bn": "before"}}, images, labels, 4, seed=1)}  # fmt: skip
    assert rows["without"]["max |output difference|"] <= 1e-6
    assert rows["without"]["relative gradient difference"] <= 1e-5
    assert rows["with"]["max |output difference|"] > 1e-2
    assert rows["with"]["relative gradient difference"] > 1e-2


def test_random_state_is_kept_and_bad_arguments():
    state = torch.get_rng_state()
    images, labels = _batch(12)
    accumulation_rows({"plain": {"hidden": [4]}}, images, labels, 3, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="micro_batches must divide the 12 images, got 5"):
        accumulated_gradient(make_mlp((4,)), images, labels, 5)
