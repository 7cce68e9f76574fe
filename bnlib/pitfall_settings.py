"""Sizes for notebooks 06 and 07 (the pitfall notebooks) in full and quick mode, and the data subset quick mode uses."""

from dataclasses import dataclass

from bnlib.data import MNISTSplits


@dataclass(frozen=True)
class PitfallSizes:
    """How big the pitfall notebooks' runs are; `num_train`/`num_test` None means the whole split."""

    num_train: int | None  # training images for every run of the notebook
    num_test: int | None
    batch_sizes: tuple = (2, 4, 8, 16, 32, 64, 128, 256)  # one epoch each, learning rate 0.1
    compare_batch_sizes: tuple = (2,)  # BatchNorm vs LayerNorm vs GroupNorm (batch 2 takes 27,000 steps in full mode)
    global_batch_size: int = 64  # split over `devices` simulated devices
    devices: tuple = (1, 2, 4, 8, 16, 32)
    num_labelled: int = 2000  # labelled images of the new domain for fine-tuning
    fine_tune_epochs: int = 5
    fine_tune_batch_size: int = 64


FULL = PitfallSizes(num_train=None, num_test=None)
QUICK = PitfallSizes(num_train=4000, num_test=2000, num_labelled=1000, fine_tune_epochs=2)


def pitfall_sizes(settings):
    """QUICK when `settings.quick` (a bnlib.Settings), else FULL."""
    return QUICK if settings.quick else FULL


def pitfall_data(data, sizes):
    """`data` cut to the first `sizes.num_train` training and `sizes.num_test` test images (validation kept)."""

    def first(split, count):
        return split if count is None else (split[0][:count], split[1][:count])

    if sizes.num_train is None and sizes.num_test is None:
        return data
    train, test = first(data.train, sizes.num_train), first(data.test, sizes.num_test)
    return MNISTSplits(
        train=train,
        valid=data.valid,
        test=test,
        source=f"{data.source}; quick mode: the first {len(train[1]):,} training and {len(test[1]):,} test images",
    )
