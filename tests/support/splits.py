"""Small MNISTSplits for unit tests: random tensors that train a few steps in milliseconds, or the first images
of the real data set for runs of a few hundred steps in about a second."""

import torch

from bnlib.data import MNISTSplits


def random_splits(train, valid, test, seed=0):
    """`train`, `valid` and `test` random 1×28×28 images in [0, 1) with random labels 0-9, drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)

    def split(size):
        return torch.rand(size, 1, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)

    return MNISTSplits(train=split(train), valid=split(valid), test=split(test), source="random test tensors")


def small_splits(mnist, train=1_920, valid=300, test=500):
    """The first `train`, `valid` and `test` images of each split of `mnist`."""
    return MNISTSplits(
        train=tuple(tensor[:train] for tensor in mnist.train),
        valid=tuple(tensor[:valid] for tensor in mnist.valid),
        test=tuple(tensor[:test] for tensor in mnist.test),
        source=f"{mnist.source}, first {train} / {valid} / {test}",
    )
