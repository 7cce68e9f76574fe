"""A small MNISTSplits for the tests of notebook 08's modules: runs of a few hundred steps in about a second."""

from bnlib.data import MNISTSplits


def small_splits(mnist, train=1_920, valid=300, test=500):
    """The first `train`, `valid` and `test` images of each split of `mnist`."""
    return MNISTSplits(
        train=tuple(tensor[:train] for tensor in mnist.train),
        valid=tuple(tensor[:valid] for tensor in mnist.valid),
        test=tuple(tensor[:test] for tensor in mnist.test),
        source=f"{mnist.source}, first {train} / {valid} / {test}",
    )
