"""Does a prediction depend on the rest of its batch? In train mode (or without running statistics) it does;
in eval mode it does not (notebooks 05 and 07)."""

import copy

import torch

from bnlib.checks import check_integer
from bnlib.data import TensorLoader
from bnlib.train import compute_accuracy


def batch_with(image, pool, batch_size, generator):
    """(batch_size, ...) tensor: `image` (1, ...) first, then `batch_size - 1` images of `pool` drawn at random.

    The batch mates are drawn by `generator` from `pool[1:]` (`pool[0]` is the usual place of `image`).
    """
    check_integer("batch_size", batch_size, minimum=2)
    others = torch.randint(1, len(pool), (batch_size - 1,), generator=generator)
    return torch.cat([image, pool[others.to(pool.device)]])


def train_mode_accuracy(model, images, labels, batch_size, device=None):
    """Test accuracy (%) with `model.eval()` forgotten: a train-mode copy normalizes each batch by its own statistics.

    The copy's running statistics move; `model` itself is left unchanged.
    """
    probe = copy.deepcopy(model).train()
    return compute_accuracy(probe, TensorLoader(images, labels, check_integer("batch_size", batch_size, minimum=1)),
                            device)  # fmt: skip
