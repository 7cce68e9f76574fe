"""Where to compute and how to make runs repeatable."""

import random
from pathlib import Path

import numpy as np
import torch

from bnlib.checks import check_integer, check_number
from bnlib.config import env_value


def resolve_device(device=None):
    """`device` as a torch.device when given; else the best available one: CUDA, then Apple's MPS, then the CPU.

    The one place that chooses a device: every function taking `device=None` resolves it here.
    """
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model, device=None):
    """`device` as a torch.device when given; else the device of `model`'s first parameter (where it computes).

    For functions that run a model they were given: they follow the model instead of choosing a device.
    """
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and GPU) with one integer."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def derive_seeds(base_seed, num_seeds):
    """Run seeds `base_seed, base_seed + 1, ...`: the first is the lecture's seed, so run 1 matches notebook 02."""
    base_seed = check_integer("base_seed", base_seed, minimum=0)
    return [base_seed + index for index in range(check_integer("num_seeds", num_seeds, minimum=1))]


CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
MEMORY_LIMIT_ENV = "BNLIB_MEMORY_LIMIT_MB"  # overrides the container's limit: `make bench` runs as a 1.5 GB container


def memory_limit_mb(files=CGROUP_MEMORY_FILES):
    """The memory limit in MB: BNLIB_MEMORY_LIMIT_MB where set, else the container's (cgroup v2, then v1), else None.

    A hub or Binder container gets 1-2 GB; code that starts extra processes reads this to start fewer.
    cgroup v1 writes "no limit" as a huge number, v2 as "max".
    """
    if env_value(MEMORY_LIMIT_ENV):
        text = env_value(MEMORY_LIMIT_ENV)
        try:
            value = float(text)
        except ValueError:
            value = text  # check_number names the variable and the allowed values
        return check_number(MEMORY_LIMIT_ENV, value, 0, None, low_open=True)
    for path in files:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= 2**60:
            return None
        return int(text) / 2**20
    return None
