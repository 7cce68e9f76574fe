"""A model whose BatchNorm layers are off their defaults: folds and fusions are only tested where they matter."""

import torch

from bnlib.stats import batchnorm_layers


def with_moved_batchnorm(model, batch_size=32):
    """`model` after 5 train-mode batches of images (running statistics moved) with gamma and beta redrawn, in eval
    mode; the caller seeds (the draws come from the global generator)."""
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.rand(batch_size, 1, 28, 28) * 2 + 0.5)
        for _, module in batchnorm_layers(model):
            module.weight.uniform_(0.5, 2)
            module.bias.normal_()
    return model.eval()
