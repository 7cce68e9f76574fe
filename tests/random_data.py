"""Random 'images' with random labels as MNISTSplits: enough to train a few steps, in milliseconds."""

import torch

from bnlib.data import MNISTSplits


def random_splits(train, valid, test, seed=0):
    """`train`, `valid` and `test` random 1×28×28 images in [0, 1) with random labels 0-9, drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)

    def split(size):
        return torch.rand(size, 1, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)

    return MNISTSplits(train=split(train), valid=split(valid), test=split(test), source="random test tensors")
