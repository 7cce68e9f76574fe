"""Run sizes for full mode (the lecture's setup) and quick mode (`BNLIB_QUICK=1`), in one place."""

import os
from dataclasses import dataclass, replace
from pathlib import Path

QUICK_ENV = "BNLIB_QUICK"


@dataclass(frozen=True)
class Settings:
    """What a notebook needs to know to size its runs."""

    quick: bool
    num_epochs: int  # the lecture trains for 50 epochs
    num_seeds: int  # seeds per variant in the placement grid
    batch_size: int = 256
    learning_rate: float = 0.1  # SGD, as in the lecture
    seed: int = 123
    workers: int = 1  # processes that train grid runs side by side on a CPU


FULL = Settings(quick=False, num_epochs=50, num_seeds=3)
QUICK = Settings(quick=True, num_epochs=2, num_seeds=2)


def available_cores():
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def settings(quick=None):
    """Full or quick settings; `quick=None` reads `BNLIB_QUICK` (1/true/yes mean quick).

    `workers` is one per core, at most 4: each holds the data set and torch (about 1 GB).
    """
    if quick is None:
        quick = os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes"}
    return replace(QUICK if quick else FULL, workers=min(4, available_cores()))


def resolve_path(path, env_var, default):
    """`path` if given, else the environment variable `env_var` when set, else `default`; absolute."""
    if path is None:
        path = os.environ.get(env_var) or default
    return Path(path).expanduser().resolve()
