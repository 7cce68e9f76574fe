"""The placement grid: MLP variants × seeds, each run trained once and cached on disk as JSON.

A run's cache key is a hash of everything that decides its result (the variant's layers, the
seed, epochs, batch size, optimizer, the data and its size, the device type, torch and bnlib
versions), so a changed configuration never returns a stale result.
"""

import hashlib
import json
import multiprocessing
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

import bnlib
from bnlib.config import resolve_path
from bnlib.data import TensorLoader, load_mnist
from bnlib.models import count_parameters, make_mlp
from bnlib.runtime import device as best_device
from bnlib.runtime import seed_everything
from bnlib.train import train_model

CACHE_DIR_ENV = "BNLIB_CACHE_DIR"
REPO_CACHE_DIR = Path(__file__).resolve().parent.parent / "build" / "grid_cache"
CACHE_FORMAT = 1  # bump when the stored record changes shape


@dataclass(frozen=True)
class Variant:
    """One MLP variant of the grid: a display name and the `make_mlp` options that build it."""

    name: str
    bn: str | None = None  # None, "before" or "after" the activation
    bias: bool | None = None  # None: off exactly when a BatchNorm directly follows the Linear
    dropout: float = 0.0
    hidden: tuple = (75, 45)

    def make_model(self):
        return make_mlp(self.hidden, bn=self.bn, bias=self.bias, dropout=self.dropout)

    def spec(self):
        """What decides the model (the name does not); `bias` resolved as `make_mlp` resolves it."""
        bias = (self.bn != "before") if self.bias is None else self.bias
        return {"hidden": list(self.hidden), "bn": self.bn, "bias": bias, "dropout": float(self.dropout)}


# The grid of notebook 03: the lecture's runs, each "no difference" claim as its own pair.
VARIANTS = (
    Variant("no BN", dropout=0.0),
    Variant("BN before ReLU, no bias", bn="before", bias=False),
    Variant("BN before ReLU, with bias", bn="before", bias=True),
    Variant("BN after ReLU", bn="after"),
    Variant("BN before ReLU + dropout", bn="before", bias=False, dropout=0.5),
    Variant("BN after ReLU + dropout", bn="after", dropout=0.5),
    Variant("dropout, no BN", dropout=0.5),
)

TABLE_COLUMNS = [
    "variant",
    "seed",
    "final_train_acc",
    "final_valid_acc",
    "test_acc",
    "best_valid_acc",
    "train_test_gap",
    "seconds_per_epoch",
    "num_params",
    "cached",
]
CURVE_COLUMNS = ["train_acc_curve", "valid_acc_curve", "loss_curve"]


def derive_seeds(base_seed, num_seeds):
    """Run seeds `base_seed, base_seed + 1, ...`: the first is the lecture's seed, so run 1 matches notebook 02."""
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or base_seed < 0:
        raise ValueError(f"base_seed must be a non-negative integer, got {base_seed!r}")
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"num_seeds must be a positive integer, got {num_seeds!r}")
    return [base_seed + index for index in range(num_seeds)]


def layer_order(variant):
    """The hidden block of `variant` as text, e.g. 'Linear(bias=False) → BatchNorm1d → ReLU → Dropout(0.5)'."""
    spec = variant.spec()
    parts = ["Linear" if spec["bias"] else "Linear(bias=False)", "ReLU"]
    if variant.bn is not None:
        parts.insert(1 if variant.bn == "before" else 2, "BatchNorm1d")
    if variant.dropout > 0:
        parts.append(f"Dropout({variant.dropout:g})")
    return " → ".join(parts)


def describe_variants(variants=VARIANTS):
    """A table of the variants: hidden block order, Linear bias, dropout and trainable parameters."""
    rows = [
        {
            "variant": variant.name,
            "hidden block": layer_order(variant),
            "dropout": variant.dropout,
            "parameters": count_parameters(variant.make_model()),
        }
        for variant in variants
    ]
    return pd.DataFrame(rows).set_index("variant")


def resolve_cache_dir(path=None):
    """Where runs are cached: `path` if given, else `$BNLIB_CACHE_DIR`, else the repository's `build/grid_cache`."""
    return resolve_path(path, CACHE_DIR_ENV, REPO_CACHE_DIR)


def fingerprint_data(data):
    """A short description of `data` for cache keys: sizes and a sha256 of every image and label byte."""
    digest = hashlib.sha256()
    sizes = {}
    for split in ("train", "valid", "test"):
        images, labels = getattr(data, split)
        digest.update(images.detach().cpu().contiguous().numpy())
        digest.update(labels.detach().cpu().contiguous().numpy())
        sizes[split] = len(labels)
    return {"sizes": sizes, "sha256": digest.hexdigest()}


def run_config(variant, seed, *, num_epochs, batch_size, learning_rate, data_fingerprint, device_type):
    """Everything that decides one run's result, as a JSON-ready dict."""
    return {
        "format": CACHE_FORMAT,
        "model": variant.spec(),
        "seed": seed,
        "num_epochs": num_epochs,
        "batch_size": batch_size,
        "optimizer": {"name": "SGD", "lr": learning_rate, "momentum": 0.0, "weight_decay": 0.0},
        "data": data_fingerprint,
        "device_type": device_type,
        "torch": str(torch.__version__),
        "bnlib": bnlib.__version__,
    }


def config_key(config):
    """The sha256 of the configuration's canonical JSON (sorted keys): the cache file's name."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def write_json_atomic(path, record):
    """Write `record` as JSON to a temporary file beside `path`, then rename it over `path` in one step.

    A crash or Ctrl-C during the write leaves the old file (or none), never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(record, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(temporary).unlink(missing_ok=True)
        raise


def read_cached_run(path, config):
    """The cached record at `path` when it exists, parses and was made with `config`; else None."""
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError):  # missing or unreadable: train again
        return None
    return record if isinstance(record, dict) and record.get("config") == config else None


def train_run(variant, seed, *, num_epochs, batch_size, learning_rate, data, device):
    """(History, trainable parameter count) of one run; `seed` sets initial weights, shuffle order and dropout masks."""
    seed_everything(seed)  # initial weights
    model = variant.make_model()
    train_loader = TensorLoader(*data.train, batch_size, shuffle=True, seed=seed, drop_last=True, device=device)
    valid_loader = TensorLoader(*data.valid, batch_size, device=device)
    test_loader = TensorLoader(*data.test, batch_size, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loaders = (train_loader, valid_loader, test_loader)
    history = train_model(model, num_epochs, *loaders, optimizer=optimizer, device=device, seed=seed, progress=False)
    return history, count_parameters(model)


def epoch_means(values, num_epochs):
    """Means of `values` (one per minibatch) over `num_epochs` equal chunks: the loss per epoch."""
    steps = len(values) // num_epochs
    return [sum(values[start : start + steps]) / steps for start in range(0, steps * num_epochs, steps)]


def _row(variant, seed, record, cached):
    history = record["history"]
    final_train, test = history["train_acc"][-1], history["test_acc"]
    return {
        "variant": variant.name,
        "seed": seed,
        "final_train_acc": final_train,
        "final_valid_acc": history["valid_acc"][-1],
        "test_acc": test,
        "best_valid_acc": max(history["valid_acc"]),
        "train_test_gap": final_train - test,
        "seconds_per_epoch": sum(history["epoch_seconds"]) / len(history["epoch_seconds"]),
        "num_params": record["num_params"],
        "cached": cached,
        "train_acc_curve": history["train_acc"],
        "valid_acc_curve": history["valid_acc"],
        "loss_curve": epoch_means(history["minibatch_loss"], len(history["train_acc"])),
    }


def _check_grid(variants, seeds):
    if not variants or not all(isinstance(variant, Variant) for variant in variants):
        raise TypeError(f"variants must be a non-empty sequence of Variant, got {variants!r}")
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if not seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be unique, got {seeds!r}")


def train_record(variant, seed, config, options, data, device):
    """Train one run and return its cache record, or None when Ctrl-C interrupted it."""
    history, num_params = train_run(variant, seed, **options, data=data, device=device)
    if history.interrupted:
        return None
    return {"config": config, "num_params": num_params, "history": history.to_dict(), "saved": time.time()}


_worker_data = None  # each worker process receives the data set once, at start-up


def _start_worker(data):
    global _worker_data
    torch.set_num_threads(1)  # one core per worker: these small models do not gain from more
    _worker_data = data


def _train_record_in_worker(variant, seed, config, options, device):
    return train_record(variant, seed, config, options, _worker_data, device)


def train_pending(pending, options, data, device, workers):
    """Yield (index, record) for each (index, variant, seed, config) in `pending`, as runs finish.

    With `workers` > 1 on the CPU the runs train in that many processes side by side; each run is
    seeded by itself, so the records are the same as one after the other.
    """
    if workers <= 1 or device.type != "cpu":
        for index, variant, seed, config in pending:
            yield index, train_record(variant, seed, config, options, data, device)
        return
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker, initargs=(data,))
    try:
        futures = {
            pool.submit(_train_record_in_worker, variant, seed, config, options, device): index
            for index, variant, seed, config in pending
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except KeyboardInterrupt:  # Ctrl-C while waiting for the workers: an interrupted run, as above
            yield None, None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_grid(
    variants=VARIANTS,
    seeds=(123,),
    *,
    num_epochs,
    batch_size=256,
    learning_rate=0.1,
    data=None,
    device=None,
    cache_dir=None,
    workers=1,
    progress=True,
):
    """Train every (variant, seed) pair, or read it from the cache; a DataFrame with one row per run.

    Columns: TABLE_COLUMNS (accuracies in %, `cached` says the run came from disk) and the curves
    CURVE_COLUMNS (per epoch: train and validation accuracy, mean minibatch loss). `data` defaults
    to `load_mnist()`; `workers` > 1 trains that many runs at once on a multi-core CPU. Ctrl-C stops
    the grid: unfinished runs are not cached, a warning says so, and the finished rows come back.
    """
    _check_grid(tuple(variants), tuple(seeds))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    data = data if data is not None else load_mnist()
    device = torch.device(device) if device is not None else best_device()
    folder, fingerprint = _cache_folder(cache_dir), fingerprint_data(data)
    options = {"num_epochs": num_epochs, "batch_size": batch_size, "learning_rate": learning_rate}
    runs = [(variant, seed) for variant in variants for seed in seeds]
    configs = [run_config(*run, **options, data_fingerprint=fingerprint, device_type=device.type) for run in runs]
    paths = [folder / f"{config_key(config)}.json" for config in configs]
    done = {}  # run index -> (record, cached)
    for index, (path, config) in enumerate(zip(paths, configs, strict=True)):
        record = read_cached_run(path, config)
        if record is not None:
            done[index] = (record, True)
    pending = [(index, *runs[index], configs[index]) for index in range(len(runs)) if index not in done]
    with tqdm(total=len(runs), initial=len(done), desc="grid runs", disable=not progress) as bar:
        for index, record in train_pending(pending, options, data, device, workers):
            if record is None:
                warnings.warn(
                    f"Interrupted: {len(runs) - len(done)} of {len(runs)} runs are not finished and not cached. "
                    "Run the cell again to resume from the cache.",
                    stacklevel=2,
                )
                break
            write_json_atomic(paths[index], record)
            done[index] = (record, False)
            bar.update()
    rows = [_row(*runs[index], *done[index]) for index in sorted(done)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS + CURVE_COLUMNS)


def _cache_folder(path):
    folder = resolve_cache_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def curves_long(runs):
    """The learning curves of `run_grid`'s DataFrame in long form: one row per (variant, seed, epoch)."""
    frame = runs[["variant", "seed", *CURVE_COLUMNS]].explode(CURVE_COLUMNS)
    frame["epoch"] = frame.groupby(["variant", "seed"], sort=False).cumcount() + 1
    frame = frame.rename(columns={"train_acc_curve": "train_acc", "valid_acc_curve": "valid_acc", "loss_curve": "loss"})
    return frame.astype({"train_acc": float, "valid_acc": float, "loss": float}).reset_index(drop=True)
