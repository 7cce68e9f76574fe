"""Notebook 09, section 3: PyTorch's fusion of every (Conv2d, BatchNorm2d) pair, against fold_batchnorm."""

import pytest
import torch
from torch import nn

from bnlib.models import make_cnn
from bnlib.stats import batchnorm_layers, fold_batchnorm, rounding_tolerance
from bnlib.studies.fusion import fuse_with_pytorch, seconds_per_batch


def trained_cnn():
    torch.manual_seed(0)
    model = make_cnn((4, 6), image_size=12, bn="before").train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, 12, 12) * 2 + 1)
    return model.eval()


def test_pytorchs_fusion_and_the_fold_agree_with_the_batchnorm_model():
    model = trained_cnn()
    fused, folded = fuse_with_pytorch(model), fold_batchnorm(model)
    assert [type(layer) for layer in fused][:3] == [nn.Conv2d, nn.Identity, nn.ReLU]
    assert not batchnorm_layers(fused) and batchnorm_layers(model)  # the original keeps its layers
    inputs = torch.rand(5, 1, 12, 12)
    tolerance = rounding_tolerance(model, inputs)
    with torch.no_grad():
        for candidate in (fused, folded):
            assert ((candidate(inputs) - model(inputs)).abs() <= tolerance).all()


def test_pytorchs_fusion_refuses_train_mode():
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        fuse_with_pytorch(trained_cnn().train())


def test_seconds_per_batch_is_a_positive_time_and_checks_repeats():
    model, images = trained_cnn(), torch.rand(4, 1, 12, 12)
    assert 0 < seconds_per_batch(model, images, repeats=3) < 10
    with pytest.raises(ValueError, match="repeats must be an integer >= 1, got 0"):
        seconds_per_batch(model, images, repeats=0)
