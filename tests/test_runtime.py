"""bnlib.runtime: the one device rule and the seeds a grid or a sweep derives from the lecture's seed."""

import pytest
import torch

from bnlib.runtime import derive_seeds, resolve_device


def test_derive_seeds_starts_at_the_base_seed():
    assert derive_seeds(123, 3) == [123, 124, 125]
    with pytest.raises(ValueError, match="num_seeds"):
        derive_seeds(123, 0)
    with pytest.raises(ValueError, match="base_seed"):
        derive_seeds(-1, 2)


def test_resolve_device_keeps_a_given_device_and_otherwise_picks_the_best():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device().type == expected
