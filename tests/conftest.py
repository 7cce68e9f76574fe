"""Shared fixtures: the data set the project would use (full MNIST via BNLIB_DATA_DIR, else the fallback), and a
run cache of the session's own, so that tests never read or write the developer's build/cache."""

import os

import pytest
import torch

from bnlib.cache import CACHE_DIR_ENV, RETRAIN_ENV, SHARED_CACHE_ENV
from bnlib.data import check_mnist_files, data_dir, load_mnist
from bnlib.runtime import MEMORY_LIMIT_ENV


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory):
    """A temporary run cache, set as $BNLIB_CACHE_DIR for the whole session and restored at its end.

    Shared by all tests, so notebooks that train the same run train it once; kernels and JupyterLab
    started by the tests inherit it with the rest of os.environ. A shared cache of the caller's is not read,
    nor a memory limit set by hand.
    """
    folder = tmp_path_factory.mktemp("run-cache")
    with pytest.MonkeyPatch.context() as patch:  # os.environ, so that child processes get it too
        patch.setenv(CACHE_DIR_ENV, str(folder))
        patch.delenv(SHARED_CACHE_ENV, raising=False)
        patch.delenv(MEMORY_LIMIT_ENV, raising=False)
        yield folder


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


@pytest.fixture(scope="session")
def recorded_run(mnist):
    """A small BN MLP (32 and 16 units, BN before ReLU, dropout 0.2) trained 3 epochs of 32 steps on 2,048 images.

    Every step's batch statistics are recorded, weights kept at checkpoint_steps(32, 3). Shared by the
    statistics and explorer tests: treat `model` as read-only (copy it before changing it).
    """
    from types import SimpleNamespace

    from bnlib.data import TensorLoader
    from bnlib.models import make_mlp
    from bnlib.stats.recording import BatchStatsRecorder, checkpoint_steps
    from bnlib.train import train_model

    images, labels = mnist.split("train", 2048)
    train = TensorLoader(images, labels, 64, shuffle=True, seed=0, drop_last=True)
    torch.manual_seed(0)
    model = make_mlp((32, 16), bn="before", dropout=0.2)
    with BatchStatsRecorder(model, keep_weights_at=checkpoint_steps(len(train), 3)) as recorder:
        train_model(model, 3, train, TensorLoader(images, labels, 512), progress=False, device="cpu",
                    on_batch=recorder, seed=0)
    return SimpleNamespace(model=model, recorder=recorder, images=images, labels=labels, steps_per_epoch=len(train))


@pytest.fixture(scope="session")
def explorer_inputs(recorded_run, mnist):
    """(recorder, test loader, population loader) for the momentum explorers, from the shared recorded run."""
    from bnlib.data import TensorLoader

    test = TensorLoader(*(tensor[:1000] for tensor in mnist.test), 250)
    return recorded_run.recorder, test, TensorLoader(recorded_run.images, recorded_run.labels, 1024)


@pytest.fixture(autouse=True)
def no_retrain(monkeypatch):
    """A BNLIB_RETRAIN=1 in the caller's environment must not change what the cache tests see."""
    monkeypatch.delenv(RETRAIN_ENV, raising=False)


@pytest.fixture
def private_umask():
    """A umask that would make new files and folders private to their owner (files 0600, folders 0700)."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


@pytest.fixture
def close_figures():
    """Close every pyplot figure after the test: plotting tests make many, and pyplot keeps them all open."""
    import matplotlib.pyplot as plt  # here, not at the top: most tests never import matplotlib

    yield
    plt.close("all")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models train many times faster on one thread when the two cores are shared (see the Makefile)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
