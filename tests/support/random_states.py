"""The global random state of Python, NumPy and torch, captured and compared: what "left as it was" means."""

import random

import numpy as np
import torch


def random_states():
    """(Python's state, NumPy's state as a tuple, torch's CPU state) now."""
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def assert_same_random_states(first, second):
    """Fail unless two `random_states()` are equal: the next draw of each generator would be the same."""
    (python_a, numpy_a, torch_a), (python_b, numpy_b, torch_b) = first, second
    assert python_a == python_b, "Python's random state changed"
    assert numpy_a[0] == numpy_b[0] and np.array_equal(numpy_a[1], numpy_b[1]), "NumPy's random state changed"
    assert numpy_a[2:] == numpy_b[2:], "NumPy's random state changed (position or cached Gaussian)"
    assert torch.equal(torch_a, torch_b), "torch's random state changed"
