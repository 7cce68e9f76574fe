"""Data-parallel training with real processes (torch.distributed, gloo on the CPU), through the run cache.

Under DistributedDataParallel (DDP) each process (rank) runs the model on its shard of the global batch,
and plain BatchNorm normalizes with that shard's statistics. DDP's buffer sync (`forward_sync_buffers`,
on by default) copies rank 0's buffers to every rank at the start of each forward pass; each rank then
updates them with its own shard. A synchronized BatchNorm normalizes with the statistics of the global
batch instead. One start of `world_size` processes runs every configuration a notebook section asks for;
each configuration is cached on its own, so a warm notebook starts no process.
"""

import functools
import importlib
from dataclasses import dataclass

from bnlib.checks import check_choice, check_integer
from bnlib.config import LEARNING_RATE
from bnlib.runs import MODEL_PREFIX, cached_run, describe_run, mlp_spec, prefixed, run_key, stored_tensors
from bnlib.runtime import memory_limit_mb
from bnlib.studies.ddp_worker import SHARDING, global_batches, test_accuracy, train_configurations, train_shards
from bnlib.studies.process_group import BACKEND, TIMEOUT_S, default_start_method, run_on_ranks

PROCEDURE = "data_parallel_steps"
GLOBAL_BATCH_PROCEDURE = "global_batch_steps"  # one process, the same global batches, in the notebook's kernel
RANK_DEVICE = "cpu"  # the ranks compute on the CPU, where gloo runs, even where a GPU is present
SYNCHRONIZED = {  # Configuration.sync -> which BatchNorm the ranks ran (the cache key's name for it)
    None: "torch.nn.BatchNorm1d (each rank its own shard)",
    "all_reduce": "bnlib.stats.sync_batchnorm.AllReduceBatchNorm1d",
    "torch": "torch.nn.SyncBatchNorm",
}
# Measured at notebook 06's data-parallel section (PSS, bench/memory.py): the kernel about 1,100 MB with torch._dynamo
# imported; a forked rank adds about 60 MB of its own, a spawned rank about 600 MB (it imports torch again).
KERNEL_MEMORY_MB = 1200
RANK_MEMORY_MB = {"fork": 100, "spawn": 600}


@dataclass(frozen=True)
class Configuration:
    """One data-parallel run of a section: which synchronized BatchNorm (None: plain BatchNorm per rank;
    "all_reduce": AllReduceBatchNorm1d; "torch": nn.SyncBatchNorm, which reports its CPU error) and whether DDP
    syncs the buffers at every forward pass."""

    sync: str | None = None
    sync_buffers: bool = True

    def __post_init__(self):
        check_choice("sync", self.sync, tuple(SYNCHRONIZED))
        check_choice("sync_buffers", self.sync_buffers, (True, False))

    def describe(self):
        return f"{SYNCHRONIZED[self.sync]}, forward_sync_buffers={self.sync_buffers}"


def rank_memory_mb():
    """About how much memory one rank adds, in MB, with the start method `run_on_ranks` uses here."""
    return RANK_MEMORY_MB[default_start_method()]


def fitting_world_size(wanted, limit_mb=None):
    """`wanted` ranks, or 2 when the kernel (KERNEL_MEMORY_MB) and `wanted` ranks (`rank_memory_mb()` each) exceed the
    memory limit `limit_mb` (default: `bnlib.runtime.memory_limit_mb()`, None where there is none)."""
    check_integer("wanted", wanted, minimum=2)
    limit_mb = memory_limit_mb() if limit_mb is None else limit_mb
    return wanted if limit_mb is None or KERNEL_MEMORY_MB + wanted * rank_memory_mb() <= limit_mb else 2


def data_parallel_key(model, configuration, *, world_size, steps, batch_size_per_device, seed, learning_rate):
    """Everything that decides a data-parallel run: the model, optimizer, world size, backend, which BatchNorm,
    the buffer sync, the sharding rule, the ranks' device, steps, batch size per rank and seed."""
    return run_key(PROCEDURE, model, learning_rate, world_size=world_size, backend=BACKEND,
                   batchnorm=SYNCHRONIZED[configuration.sync], forward_sync_buffers=configuration.sync_buffers,
                   sharding=SHARDING, rank_device=RANK_DEVICE, steps=steps,
                   batch_size_per_device=batch_size_per_device, seed=seed)  # fmt: skip


def _for_ranks(split):
    """(pixels, labels) as the ranks get them: forked ranks share the parent's tensors as they are; for spawned ranks
    they are copied once into shared memory, which every rank maps instead of receiving a copy of its own."""
    if default_start_method() == "fork":
        return split
    return tuple(tensor.clone().share_memory_() for tensor in split)


def spawn_configurations(model, configurations, *, world_size, timeout_s, **arguments):
    """{configuration: (record, tensors)} from one spawn of `world_size` ranks that train every configuration."""
    if default_start_method() == "fork":  # a spawned rank imports everything anew: the kernel would hold it for nothing
        importlib.import_module("torch._dynamo")  # DDP imports it (~150 MB): imported here once, forked ranks share it
    ranks = run_on_ranks(train_configurations, {"model": model, "configurations": configurations, **arguments},
                         world_size=world_size, timeout_s=timeout_s)  # fmt: skip
    return {configuration: _as_entry([rank[index] for rank in ranks], world_size)
            for index, configuration in enumerate(configurations)}  # fmt: skip


def _as_entry(results, world_size):
    """(record, tensors) of one configuration from every rank's result: rank 0's state and accuracy, each rank's
    statistics under "rank<r>/"."""
    first = results[0]
    if "errors" in first:
        return {"errors": first["errors"], "world_size": world_size}, prefixed(MODEL_PREFIX, first["state"])
    tensors = prefixed(MODEL_PREFIX, first["state"])
    for rank, result in enumerate(results):
        tensors.update(prefixed(f"rank{rank}", result["statistics"]))
    return {"eval_test_acc": first["eval_test_acc"], "world_size": world_size}, tensors


def train_data_parallel_configurations(model_options, configurations, *, world_size, steps, batch_size_per_device,
                                       seed, data, learning_rate=LEARNING_RATE, timeout_s=TIMEOUT_S,
                                       verbose=False):  # fmt: skip
    """{configuration: CachedRun} of `make_mlp(**model_options)` trained by `world_size` ranks for `steps` SGD steps
    on shards of `batch_size_per_device`; the first configuration not in the run cache spawns the ranks once, for all.

    A CachedRun's model is rank 0's final state (a checkpoint saved from rank 0), its record the eval-mode test
    accuracy, its tensors "rank<r>/<layer>/<name>" (steps, C) for every rank and BatchNorm layer, name in
    ddp_worker.RECORDED. For sync="torch" the record holds nn.SyncBatchNorm's errors instead.
    """
    model, configurations = mlp_spec(model_options), [_configuration(item) for item in configurations]
    arguments = dict(steps=check_integer("steps", steps, minimum=1), seed=check_integer("seed", seed, minimum=0),
                     batch_size_per_device=check_integer("batch_size_per_device", batch_size_per_device, minimum=2),
                     learning_rate=learning_rate)  # fmt: skip
    check_integer("world_size", world_size, minimum=2)
    if world_size * batch_size_per_device > len(data.train[1]):
        raise ValueError(f"world_size * batch_size_per_device must be at most the {len(data.train[1])} training "
                         f"images, got {world_size} * {batch_size_per_device}")  # fmt: skip
    spawned = {}  # filled by the first run that is not in the cache

    def compute(configuration):
        if not spawned:
            shared = {"train": _for_ranks(data.train), "test": _for_ranks(data.test)}
            spawned.update(spawn_configurations(model, configurations, world_size=world_size, timeout_s=timeout_s,
                                                **shared, **arguments))  # fmt: skip
        return spawned[configuration]

    return {configuration: cached_run(
                data_parallel_key(model, configuration, world_size=world_size, **arguments), model,
                functools.partial(compute, configuration), data=data, device=RANK_DEVICE, verbose=verbose,
                description=describe_run(model, f"{world_size} ranks x {batch_size_per_device}, {steps} steps",
                                         configuration.describe()))
            for configuration in configurations}  # fmt: skip


def _configuration(item):
    if not isinstance(item, Configuration):
        raise TypeError(f"configurations must hold Configuration objects, got {type(item).__name__}")
    return item


def train_data_parallel(model_options, *, world_size, sync, steps, batch_size_per_device, seed, data,
                        sync_buffers=True, **options):  # fmt: skip
    """The CachedRun of one configuration (see `train_data_parallel_configurations`)."""
    configuration = Configuration(sync, sync_buffers)
    return train_data_parallel_configurations(model_options, [configuration], world_size=world_size, steps=steps,
                                              batch_size_per_device=batch_size_per_device, seed=seed, data=data,
                                              **options)[configuration]  # fmt: skip


def train_global_batch(model_options, *, world_size, steps, batch_size_per_device, seed, data,
                       learning_rate=LEARNING_RATE, verbose=False):  # fmt: skip
    """The CachedRun of one process training on the same global batches (world_size x batch_size_per_device),
    in this process: its statistics under "rank0/", as a data-parallel run's."""
    model = mlp_spec(model_options)
    per_rank = check_integer("batch_size_per_device", batch_size_per_device, 1)
    batch_size = check_integer("world_size", world_size, 1) * per_rank  # the data-parallel runs' global batch
    key = run_key(GLOBAL_BATCH_PROCEDURE, model, learning_rate, global_batch_size=batch_size,
                  batches=SHARDING.partition(";")[0], steps=check_integer("steps", steps, 1),
                  seed=check_integer("seed", seed, 0))  # fmt: skip

    def compute():
        trained = model.build(seed)
        batches = global_batches(data.train, batch_size, seed, steps)
        statistics = train_shards(trained, batches, rank=0, world_size=1, learning_rate=learning_rate)
        record = {"eval_test_acc": test_accuracy(trained, data.test), "world_size": 1}
        return record, stored_tensors(trained, prefixed("rank0", statistics))

    description = describe_run(model, f"one process on batches of {batch_size}, {steps} steps")
    return cached_run(key, model, compute, data=data, device=RANK_DEVICE, description=description, verbose=verbose)
