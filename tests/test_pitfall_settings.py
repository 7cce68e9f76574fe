"""Quick mode cuts the pitfall notebooks' data; full mode uses every image."""

import torch

from bnlib.config import settings
from bnlib.data import MNISTSplits
from bnlib.pitfall_settings import FULL, QUICK, pitfall_data, pitfall_sizes


def test_sizes_follow_quick_mode():
    assert pitfall_sizes(settings(quick=True)) is QUICK
    assert pitfall_sizes(settings(quick=False)) is FULL
    assert all(size % devices == 0 for size in [FULL.global_batch_size] for devices in FULL.devices)


def test_data_subset():
    def split(count):
        return torch.arange(count).float().reshape(-1, 1, 1, 1), torch.arange(count)

    data = MNISTSplits(train=split(5000), valid=split(100), test=split(3000), source="s")
    assert pitfall_data(data, FULL) is data
    cut = pitfall_data(data, QUICK)
    assert len(cut.train[0]) == QUICK.num_train and len(cut.test[1]) == QUICK.num_test
    assert torch.equal(cut.train[1], torch.arange(QUICK.num_train)) and cut.valid is data.valid
    assert f"quick mode: the first {QUICK.num_train:,} training and {QUICK.num_test:,} test images" in cut.source
