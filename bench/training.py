"""Epoch times of one model three ways: bnlib's pipeline, the classic torchvision one, and bare compute.

(a) bnlib: resident tensors, `TensorLoader`, `train_model`.
(b) classic, the lecture helper's style: `torchvision.datasets.MNIST` with `transforms.ToTensor()`,
    `SubsetRandomSampler` train/valid split, `DataLoader(num_workers=0)`, the same `train_model`.
(c) bare: one resident batch reused for the same number of SGD steps; no loader, no bookkeeping.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, SubsetRandomSampler

from bench.measure import paired_ratio, rotated, time_call
from bnlib.config import BATCH_SIZE, LEARNING_RATE, SEED
from bnlib.data import NUM_VALID, check_mnist_files, data_dir, lecture_loaders, load_mnist
from bnlib.models import make_mlp
from bnlib.train import History, sgd, train_model, train_one_epoch

MODELS = {"lecture BN 784-75-45-10": (75, 45), "wide BN 784-128-256-10": (128, 256)}
PAIRS = (("bnlib_epoch_s", "classic_epoch_s"), ("bnlib_steps_s", "bare_steps_s"))  # each ratio's two measures
STEP_PAIRS_PER_REPEAT = 3  # a steps pair takes under a second: more of them cost little and steady the ratio


def classic_loaders(root, batch_size, seed):
    """Train and validation DataLoaders as the lecture's helper builds them: per-sample ToTensor, no workers."""
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    split = len(dataset) - NUM_VALID  # the same 54,000 / 6,000 split as bnlib.data
    generator = torch.Generator().manual_seed(seed)
    train_sampler = SubsetRandomSampler(range(split), generator=generator)
    valid_sampler = SubsetRandomSampler(range(split, len(dataset)), generator=generator)
    train = DataLoader(dataset, batch_size, sampler=train_sampler, drop_last=True, num_workers=0)
    valid = DataLoader(dataset, batch_size, sampler=valid_sampler, num_workers=0)
    return train, valid


def fresh_model(hidden, seed, device):
    """The BN model (BatchNorm before ReLU, as in the lecture) with seeded weights, and its SGD optimizer."""
    torch.manual_seed(seed)
    model = make_mlp(hidden, bn="before").to(device)
    return model, sgd(model.parameters(), LEARNING_RATE)


def whole_epoch(hidden, loaders, seed, device):
    """One `train_model` epoch: the training steps plus the train and validation accuracy passes."""
    model, optimizer = fresh_model(hidden, seed, device)
    return lambda: train_model(model, 1, *loaders, optimizer=optimizer, device=device, progress=False)


def training_steps(hidden, train_loader, seed, device):
    """bnlib's training steps of one epoch only (`train_one_epoch`, no accuracy passes)."""
    model, optimizer = fresh_model(hidden, seed, device)
    return lambda: train_one_epoch(model, train_loader, optimizer, device, history=History())


def bare_steps(hidden, batch, num_steps, seed, device):
    """`num_steps` SGD steps on one resident batch: the compute an epoch cannot avoid."""
    model, optimizer = fresh_model(hidden, seed, device)
    images, labels = batch

    def run():
        model.train()
        for _ in range(num_steps):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def classic_root():
    """The data folder when it holds the full MNIST files the classic pipeline reads, else None."""
    root = data_dir()
    return root if check_mnist_files(root) else None


def measure_factories(hidden, loaders, classic, seed, device):
    """{measure: () -> run}: each call builds a fresh seeded model, so every run does the same work."""
    train_loader = loaders[0]
    batch, num_steps = next(iter(train_loader)), len(train_loader)
    factories = {
        "bnlib_epoch_s": lambda: whole_epoch(hidden, loaders, seed, device),
        "bnlib_steps_s": lambda: training_steps(hidden, train_loader, seed, device),
        "bare_steps_s": lambda: bare_steps(hidden, batch, num_steps, seed, device),
        "loader_only_s": lambda: lambda: sum(1 for _ in train_loader),  # diagnostic: slicing batches, no compute
    }
    if classic is not None:
        factories["classic_epoch_s"] = lambda: whole_epoch(hidden, classic, seed, device)
    return factories


def schedule(repeat, available):
    """The measures of one repetition in order: each pair back to back, its order flipped every repetition.

    Flipping (AB, then BA) cancels a load that drifts steadily; a measure that is not `available`
    (the classic pipeline without full MNIST) is left out, and its partner runs alone.
    """
    order = []
    for pair in PAIRS:
        keys = [key for key in pair if key in available]
        count = STEP_PAIRS_PER_REPEAT if pair == PAIRS[1] else 1
        order += [key for index in range(count) for key in rotated(keys, repeat + index)]
    return order + ["loader_only_s"]


def time_models(repeats, device, batch_size=BATCH_SIZE, seed=SEED, models=MODELS, log=print):
    """{model: {measure: [seconds, ...]}}, the models and measures interleaved in every repetition.

    Without full MNIST on disk the classic measure is left out (a 5,000-digit fallback would not
    be "the full training split"), and `classic_epoch_s` is missing from the result.
    """
    loaders = lecture_loaders(load_mnist(), batch_size, seed, device)[:2]
    root = classic_root()
    classic = classic_loaders(root, batch_size, seed) if root is not None else None
    factories = {name: measure_factories(hidden, loaders, classic, seed, device) for name, hidden in models.items()}
    times = {name: {} for name in models}
    for measures in factories.values():  # warm-up: allocator, thread pool, first-touch of the data
        for key in ("bnlib_epoch_s", "bare_steps_s"):
            time_call(measures[key](), device)
    for repeat in range(repeats):
        for name, measures in factories.items():
            for key in schedule(repeat, measures):
                seconds = time_call(measures[key](), device)
                times[name].setdefault(key, []).append(seconds)
            log(f"  repetition {repeat + 1}/{repeats}, {name}: " + ", ".join(
                f"{key} {values[-1]:.2f}" for key, values in times[name].items()))
    return times


def summarize_models(times):
    """Per model: the median of each measure, `speedup_vs_classic` (b / a) and `overhead_vs_bare` (a / c)."""
    summary = {}
    for name, measures in times.items():
        row = {key: float(np.median(values)) for key, values in measures.items()}
        if "classic_epoch_s" in measures:
            row["speedup_vs_classic"] = paired_ratio(measures["classic_epoch_s"], measures["bnlib_epoch_s"])
        row["overhead_vs_bare"] = paired_ratio(measures["bnlib_steps_s"], measures["bare_steps_s"])
        row["repeats"] = len(measures["bnlib_epoch_s"])
        summary[name] = row
    return summary
