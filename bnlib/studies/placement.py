"""The placement grid: MLP variants × seeds, each run trained once and kept in the run cache (bnlib.cache).

A run is the lecture's standard run (`bnlib.runs.lecture_key`, `train_lecture_run`), keyed by everything
that decides its result (make_mlp's resolved arguments and the model's structure, the seed, epochs,
batch size, optimizer, the data, the device type, torch's version and bnlib's code), so a changed
configuration never returns a stale result, and a notebook's `train_mlp_run` with the same settings
shares the grid's entry.
"""

import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from bnlib.cache import fingerprint_data, full_config, lookup, resolve_cache_dir, write_entry
from bnlib.checks import check_integer
from bnlib.config import BATCH_SIZE, LEARNING_RATE, SEED
from bnlib.data import load_mnist
from bnlib.models import count_parameters, mlp_arguments
from bnlib.runs import lecture_description, lecture_key, mlp_spec, preserved_random_state, train_lecture_run
from bnlib.runtime import memory_limit_mb, resolve_device
from bnlib.train import History


class Variant:
    """One MLP variant of the grid: a display name and the `make_mlp` options that build it."""

    def __init__(self, name, **options):
        mlp_arguments(**options)  # an unknown or bad option fails here, not in a worker process
        self.name, self.options = name, options

    def __repr__(self):
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return f"Variant({self.name!r}{options})"

    def spec(self):
        """The ModelSpec of its runs (the same as `train_mlp_run`'s for these options)."""
        return mlp_spec(self.options)

    def make_model(self):
        """The variant's model on the meta device: its layers and parameter count, with no draw from the global
        random state (describing the variants leaves the notebook's later numbers as they were)."""
        return self.spec().build_on_meta()


# The grid of notebook 03: the lecture's runs, each "no difference" claim as its own pair. make_mlp drops the
# bias before BatchNorm itself, so "no bias" runs share their cache entries with the notebooks' make_mlp(bn="before").
VARIANTS = (
    Variant("no BN"),
    Variant("BN before ReLU, no bias", bn="before"),
    Variant("BN before ReLU, with bias", bn="before", bias=True),
    Variant("BN after ReLU", bn="after"),
    Variant("BN before ReLU + dropout", bn="before", dropout=0.5),
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
    "train_valid_gap",
    "train_test_gap",
    "seconds_per_epoch",
    "num_params",
    "cached",
]
CURVE_COLUMNS = ["train_acc_curve", "valid_acc_curve", "loss_curve"]


def _block_part(module):
    if isinstance(module, nn.Linear):
        return "Linear" if module.bias is not None else "Linear(bias=False)"
    if isinstance(module, nn.Dropout):
        return f"Dropout({module.p:g})"
    return type(module).__name__


def layer_order(variant):
    """The first hidden block of `variant`'s model as text, e.g. 'Linear(bias=False) → BatchNorm1d → ReLU'."""
    layers = [module for module in variant.make_model() if not isinstance(module, nn.Flatten)]
    second_linear = next(index for index, module in enumerate(layers[1:], 1) if isinstance(module, nn.Linear))
    return " → ".join(_block_part(module) for module in layers[:second_linear])


def describe_variants(variants=VARIANTS):
    """A table of the variants: hidden block order, Linear bias, dropout and trainable parameters."""
    rows = [
        {
            "variant": variant.name,
            "hidden block": layer_order(variant),
            "dropout": mlp_arguments(**variant.options)["dropout"],
            "parameters": count_parameters(variant.make_model()),
        }
        for variant in variants
    ]
    return pd.DataFrame(rows).set_index("variant")


def epoch_means(values, num_epochs):
    """Means of `values` (one per minibatch) over `num_epochs` equal chunks: the loss per epoch."""
    steps = len(values) // num_epochs
    return [sum(values[start : start + steps]) / steps for start in range(0, steps * num_epochs, steps)]


def _row(variant, seed, record, cached):
    history = History(**record["history"])
    return {
        "variant": variant.name,
        "seed": seed,
        **history.final_numbers(),
        "best_valid_acc": max(history.valid_acc),
        "train_valid_gap": history.train_acc[-1] - history.valid_acc[-1],  # overfitting, as the curves show it
        "num_params": record["num_params"],
        "cached": cached,
        "train_acc_curve": history.train_acc,
        "valid_acc_curve": history.valid_acc,
        "loss_curve": epoch_means(history.minibatch_loss, len(history.train_acc)),
    }


def _check_grid(variants, seeds):
    if not variants or not all(isinstance(variant, Variant) for variant in variants):
        raise TypeError(f"variants must be a non-empty sequence of Variant, got {variants!r}")
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of non-negative integers, got {seeds!r}")
    for seed in seeds:
        check_integer("seeds", seed, minimum=0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be unique, got {seeds!r}")


def _train(variant, seed, options, data, device):
    """(record, tensors) of one grid run, without a progress bar (the grid has its own)."""
    return train_lecture_run(variant.spec(), seed=seed, **options, data=data, device=device, progress=False)


_worker_data = None  # each worker process receives the data set once, at start-up (in shared memory: torch pickles
# a CPU tensor for another process by moving its storage to shared memory, so the workers read the kernel's copy)

# A process that imports torch and trains a grid run: about 390 MB of its own (measured, notebook 03 in full mode)
# plus torch's libraries (about 400 MB, shared by all such processes); rounded up to 600 for a container.
WORKER_MB = 600


def affordable_workers(workers, limit_mb):
    """`workers`, or 1 (train in this process) when `workers` processes beside this one, each WORKER_MB as this one
    is, would not fit in the memory limit `limit_mb` (None: no limit)."""
    if limit_mb is not None and (workers + 1) * WORKER_MB > limit_mb:
        return 1
    return workers


def _start_worker(data):
    global _worker_data
    torch.set_num_threads(1)  # one core per worker: these small models do not gain from more
    _worker_data = data


def _train_in_worker(variant, seed, options, device):
    return _train(variant, seed, options, _worker_data, device)


def train_pending(pending, options, data, device, workers):
    """Yield (index, (record, tensors)) for each (index, variant, seed) in `pending`, as runs finish.

    With `workers` > 1 on the CPU the runs train in that many processes side by side; each run is
    seeded by itself, so the results are the same as one after the other. Ctrl-C while waiting
    for the workers yields (None, None).
    """
    if workers <= 1 or device.type != "cpu":
        for index, variant, seed in pending:
            yield index, _train(variant, seed, options, data, device)
        return
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker, initargs=(data,))
    try:
        futures = {
            pool.submit(_train_in_worker, variant, seed, options, device): index for index, variant, seed in pending
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except KeyboardInterrupt:
            yield None, None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _train_and_store(runs, configs, done, *, options, data, device, folder, workers, progress):
    """Train the runs missing from `done` and store each in the run cache as it finishes, adding it to `done`.

    Ctrl-C (or an interrupted run) stops the grid with a warning; the finished runs stay in `done`.
    """
    pending = [(index, *runs[index]) for index in range(len(runs)) if index not in done]
    with tqdm(total=len(runs), initial=len(done), desc="grid runs", disable=not progress) as bar:
        for index, result in train_pending(pending, options, data, device, workers):
            if index is None or result[0]["interrupted"]:
                warnings.warn(
                    f"Interrupted: {len(runs) - len(done)} of {len(runs)} runs are not finished and not cached. "
                    "Run the cell again to resume from the cache.",
                    stacklevel=3,  # the caller of run_grid
                )
                return
            variant, seed = runs[index]
            description = lecture_description(variant.spec(), seed, options["num_epochs"])
            write_entry(folder, configs[index], *result, description=description)
            done[index] = (result[0], False)
            bar.update()


def run_grid(
    variants=VARIANTS,
    seeds=(SEED,),
    *,
    num_epochs,
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
    data=None,
    device=None,
    cache_dir=None,
    workers=1,
    progress=True,
):
    """Train every (variant, seed) pair, or read it from the run cache; a DataFrame with one row per run.

    Columns: TABLE_COLUMNS (accuracies in %, `cached` says the run came from disk) and the curves
    CURVE_COLUMNS (per epoch: train and validation accuracy, mean minibatch loss). `data` defaults
    to `load_mnist()`; `workers` > 1 trains that many runs at once on a multi-core CPU, unless the container's
    memory limit cannot hold them (`affordable_workers`, `bnlib.runtime.memory_limit_mb`). Ctrl-C stops
    the grid: unfinished runs are not cached, a warning says so, and the finished rows come back.
    The global random state is left as it was (each run seeds itself), whether the runs were trained or read.
    """
    _check_grid(tuple(variants), tuple(seeds))
    workers = affordable_workers(check_integer("workers", workers, minimum=1), memory_limit_mb())
    data = data if data is not None else load_mnist()
    device = resolve_device(device)
    folder = resolve_cache_dir(cache_dir)
    options = {"num_epochs": num_epochs, "batch_size": batch_size, "learning_rate": learning_rate}
    runs = [(variant, seed) for variant in variants for seed in seeds]
    fingerprint = fingerprint_data(data)  # once: it reads every byte of the data
    configs = [full_config(lecture_key(variant.spec(), seed=seed, **options), fingerprint, device)
               for variant, seed in runs]  # fmt: skip
    done = {}  # run index -> (record, cached)
    for index, config in enumerate(configs):
        entry = lookup(folder, config)
        if entry is not None:
            done[index] = (entry.record, True)
    with preserved_random_state():  # each run reseeds Python, NumPy and torch (ModelSpec.build)
        _train_and_store(runs, configs, done, options=options, data=data, device=device, folder=folder,
                         workers=workers, progress=progress)  # fmt: skip
    rows = [_row(*runs[index], *done[index]) for index in sorted(done)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS + CURVE_COLUMNS)


def curves_long(runs):
    """The learning curves of `run_grid`'s DataFrame in long form: one row per (variant, seed, epoch)."""
    frame = runs[["variant", "seed", *CURVE_COLUMNS]].explode(CURVE_COLUMNS)
    frame["epoch"] = frame.groupby(["variant", "seed"], sort=False).cumcount() + 1
    frame = frame.rename(columns={"train_acc_curve": "train_acc", "valid_acc_curve": "valid_acc", "loss_curve": "loss"})
    return frame.astype({"train_acc": float, "valid_acc": float, "loss": float}).reset_index(drop=True)
