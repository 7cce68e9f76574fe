"""Every size a notebook uses, full mode (the lecture's setup) and quick mode (`BNLIB_QUICK=1`), in one object.

`settings()` is the one place that reads `BNLIB_QUICK`; its sections size the later notebooks
(`settings().pitfalls` for 06-07, `settings().why` for 08, `settings().cnn` for 09).
"""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

QUICK_ENV = "BNLIB_QUICK"

# The lecture's setup, used as every function's default.
BATCH_SIZE = 256
LEARNING_RATE = 0.1  # SGD, no momentum
SEED = 123


@dataclass(frozen=True)
class PitfallSizes:
    """Notebooks 06 and 07; `num_train`/`num_test` None means the whole split."""

    num_train: int | None  # training images for every run of the notebook
    num_test: int | None
    batch_sizes: tuple = (2, 4, 8, 16, 32, 64, 128, 256)  # one epoch each, learning rate 0.1
    compare_batch_sizes: tuple = (2,)  # BatchNorm vs LayerNorm vs GroupNorm (batch 2 takes 27,000 steps in full mode)
    ranks: int = 4  # data-parallel processes (2 where the memory limit is too small; quick mode: 2, to start faster)
    rank_batch_size: int = 8  # examples per rank: a global batch of 32 with 4 ranks
    data_parallel_steps: int = 500  # SGD steps of every data-parallel run
    accumulation_batch_size: int = 256  # one batch, against micro_batches accumulated chunks of it
    micro_batches: int = 4
    num_labelled: int = 2000  # labelled images of the new domain for fine-tuning
    fine_tune_epochs: int = 5
    fine_tune_batch_size: int = 64


@dataclass(frozen=True)
class WhyBatchNormSizes:
    """Notebook 08. Full mode fits about 2 minutes of training on a 2-core CPU from an empty cache."""

    figure_steps: int  # SGD steps of each Figure 1 network (the paper: 50,000)
    track_every: int  # steps between two measurements of the tracked sigmoid input (the paper: 50)
    accuracy_every: int  # steps between two test-accuracy measurements
    num_tracked: int  # validation images that the tracked input is measured on
    learning_rates: tuple  # the learning-rate sweep's grid
    init_stds: tuple  # the initialization sweep's grid of weight standard deviations
    sweep_epochs: int  # epochs of every sweep run
    sweep_seeds: int  # seeds per network and grid point
    early_steps: int  # "after the first few hundred steps": where percentile movement is measured from


@dataclass(frozen=True)
class CnnSizes:
    """Notebook 09's runs of make_cnn; full mode aims at 4 minutes on a 2-core CPU from an empty cache."""

    num_train: int | None  # training images (None: the whole split)
    num_test: int | None
    num_epochs: int  # every CNN run: with and without BatchNorm, and each weight-decay choice
    bias_images: int  # training images the bias trace cycles through (whole epochs, at least `bias_steps` steps)
    bias_steps: int
    weight_decay: float = 5e-3  # large enough to move the weight norms visibly within a few epochs at lr 0.1


@dataclass(frozen=True)
class Settings:
    """What a notebook needs to know to size its runs: notebooks 01-05 at the top level, then one section each."""

    quick: bool
    num_epochs: int  # the lecture trains for 50 epochs
    num_seeds: int  # seeds per variant in the placement grid
    pitfalls: PitfallSizes = field(repr=False)  # the notebooks that use a section print it themselves
    why: WhyBatchNormSizes = field(repr=False)
    cnn: CnnSizes = field(repr=False)
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    seed: int = SEED
    # The smallest difference in accuracy (points) that matters, declared before any run: 0.5 points is 50 of the
    # 10,000 test images, under half the 1.17-point drop that dropout caused in the course's dropout notebook
    # (97.77 % -> 96.60 %). Notebook 03 calls two variants equivalent, or a train - validation gap 0, only
    # within ±this margin.
    equivalence_margin: float = 0.5
    workers: int = field(default=1)  # processes that train grid runs side by side on a CPU


FULL = Settings(
    quick=False,
    num_epochs=50,
    # 5 seeds: an empty cache trains 7 variants x 5 seeds x 50 epochs = 1,750 epochs, about 6.5 minutes at about
    # 0.45 s per epoch with 2 workers side by side (about 6 in `make run`, where notebooks 01-02 cached 3 of them).
    num_seeds=5,
    pitfalls=PitfallSizes(num_train=None, num_test=None),
    why=WhyBatchNormSizes(
        figure_steps=10_000,
        track_every=50,
        accuracy_every=250,
        num_tracked=1_000,
        learning_rates=(0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6),  # half decades, past where plain diverges
        init_stds=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
        sweep_epochs=3,
        sweep_seeds=2,
        early_steps=500,
    ),
    cnn=CnnSizes(num_train=None, num_test=None, num_epochs=3, bias_images=10_240, bias_steps=40),
)
QUICK = Settings(
    quick=True,
    num_epochs=2,
    num_seeds=2,
    pitfalls=PitfallSizes(num_train=4000, num_test=2000, num_labelled=1000, fine_tune_epochs=2, ranks=2,
                           data_parallel_steps=100),
    why=WhyBatchNormSizes(
        figure_steps=600,
        track_every=50,
        accuracy_every=100,
        num_tracked=1_000,
        learning_rates=(0.01, 0.1, 1.0, 10.0, 31.6),
        init_stds=(0.001, 0.03, 1.0),
        sweep_epochs=1,
        sweep_seeds=1,
        early_steps=200,
    ),
    cnn=CnnSizes(num_train=1024, num_test=1000, num_epochs=1, bias_images=1024, bias_steps=8),
)


def env_value(name):
    """The environment variable `name` stripped and lowercased ("" when unset): how every BNLIB_ switch is read."""
    return os.environ.get(name, "").strip().lower()


def env_flag(name, default=False):
    """The environment variable `name` as a bool: 1/true/yes are True, 0/false/no False, unset or other `default`."""
    value = env_value(name)
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    return default


def available_cores():
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def settings(quick=None):
    """Full or quick settings; `quick=None` reads `BNLIB_QUICK` (1/true/yes mean quick).

    `workers` is one per core, at most 4: each holds the data set and torch (about 1 GB).
    """
    if quick is None:
        quick = env_flag(QUICK_ENV)
    return replace(QUICK if quick else FULL, workers=min(4, available_cores()))


def resolve_path(path, env_var, default):
    """`path` if given, else the environment variable `env_var` when set, else `default`; absolute."""
    if path is None:
        path = os.environ.get(env_var) or default
    return Path(path).expanduser().resolve()
