"""Shared fixtures: the data set the project would use (full MNIST via BNLIB_DATA_DIR, else the fallback)."""

import pytest
import torch

from bnlib.data import check_mnist_files, data_dir, load_mnist


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def full_mnist_root():
    """The data directory when it holds the full MNIST files; tests that compare with torchvision need it."""
    root = data_dir()
    if not check_mnist_files(root):
        pytest.skip(f"full MNIST not in {root}; set BNLIB_DATA_DIR to a folder with MNIST/raw")
    return root


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models train many times faster on one thread when the two cores are shared (see the Makefile)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
