"""What one rank of a data-parallel run does: DDP training on its shard of every global batch, recording BatchNorm.

Every rank draws the same global batches (`global_batches`: the seeded shuffle every run of the lecture
uses) and keeps chunk `rank` of `tensor_split(world_size)`; one process training on the global batch
draws the same batches, so the runs differ only in where BatchNorm's statistics come from. The ranks
compute on the CPU (gloo); `bnlib.studies.data_parallel` starts them and caches what they return.
"""

import itertools
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bnlib.data import TensorLoader, training_loader
from bnlib.stats.batchnorm import batchnorm_layers, unit_view
from bnlib.stats.sync_batchnorm import convert_to_all_reduce_batchnorm
from bnlib.studies.process_group import one_line
from bnlib.train import compute_accuracy, sgd

SHARDING = "global batches from training_loader(seed); rank r trains on chunk r of tensor_split(world_size)"
RECORDED = ("seen_mean", "seen_var", "shard_mean", "shard_var", "running_mean", "running_var")


def global_batches(train, global_batch_size, seed, steps):
    """The first `steps` (images, labels) global batches of `training_loader(train, global_batch_size, seed)`,
    epoch after epoch."""
    loader = training_loader(train, global_batch_size, seed)
    return itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), steps)


@contextmanager
def recording_batchnorm(model):
    """{layer: {name in RECORDED: [(C,) per step]}} filled while training: the buffers each train-mode forward pass
    found (after DDP's broadcast), the shard's mean and unbiased variance, and the buffers after it."""
    records, handles = {}, []
    for name, layer in batchnorm_layers(model):
        record = records[name] = {kind: [] for kind in RECORDED}
        handles.append(layer.register_forward_pre_hook(_record_before(record)))
        handles.append(layer.register_forward_hook(_record_after(record)))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _record_before(record):
    def hook(layer, args):
        if layer.training:
            values = unit_view(args[0].detach())  # (N, C)
            record["seen_mean"].append(layer.running_mean.clone())
            record["seen_var"].append(layer.running_var.clone())
            record["shard_mean"].append(values.mean(0))
            record["shard_var"].append(values.var(0))  # unbiased, as the running update takes it
    return hook


def _record_after(record):
    def hook(layer, _args, _output):
        if layer.training:
            record["running_mean"].append(layer.running_mean.clone())
            record["running_var"].append(layer.running_var.clone())
    return hook


def stacked(records):
    """{"layer/name": (steps, C)} from `recording_batchnorm`'s lists."""
    return {f"{layer}/{kind}": torch.stack(values)
            for layer, record in records.items() for kind, values in record.items()}  # fmt: skip


def train_shards(model, batches, *, rank, world_size, learning_rate):
    """SGD on chunk `rank` of every global batch in `batches` (`model` may be DDP-wrapped); the recorded statistics."""
    optimizer = sgd(model.parameters(), learning_rate)
    model.train()
    with recording_batchnorm(model.module if isinstance(model, DistributedDataParallel) else model) as records:
        for images, labels in batches:
            loss = F.cross_entropy(model(images.tensor_split(world_size)[rank]), labels.tensor_split(world_size)[rank])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return stacked(records)


def test_accuracy(model, test):
    """Eval-mode accuracy (%) of `model` on `test` (pixels, labels)."""
    return compute_accuracy(model.eval(), TensorLoader(*test, 1000))


def torch_sync_batchnorm_errors(model, images):
    """{"ddp": ..., "forward": ...}: what nn.SyncBatchNorm does with CPU tensors in this process group, in one line
    each: wrapped in DDP, and its train-mode forward pass alone ("no error" where it runs)."""
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model).train()
    errors = {}
    for step, run in {"ddp": lambda: DistributedDataParallel(converted), "forward": lambda: converted(images)}.items():
        try:
            run()
            errors[step] = "no error"
        except Exception as error:  # the error is the result here: the notebook shows it
            errors[step] = one_line(error)
    return errors


def train_configuration(rank, world_size, model, configuration, *, steps, batch_size_per_device, seed, learning_rate,
                        train, test):  # fmt: skip
    """This rank's result for one configuration: its recorded statistics; on rank 0 also the final state_dict and
    the eval-mode test accuracy. For nn.SyncBatchNorm, the errors it raises instead."""
    trained = model.build(seed)  # the same initial weights on every rank
    batches = global_batches(train, batch_size_per_device * world_size, seed, steps)
    if configuration.sync == "torch":
        images, _ = next(iter(batches))
        return {"errors": torch_sync_batchnorm_errors(trained, images.tensor_split(world_size)[rank]),
                "state": trained.state_dict()}  # fmt: skip
    if configuration.sync == "all_reduce":
        trained = convert_to_all_reduce_batchnorm(trained)
    wrapped = DistributedDataParallel(trained, forward_sync_buffers=configuration.sync_buffers)
    result = {"statistics": train_shards(wrapped, batches, rank=rank, world_size=world_size,
                                         learning_rate=learning_rate)}  # fmt: skip
    if rank == 0:
        result["state"] = trained.state_dict()
        result["eval_test_acc"] = test_accuracy(trained, test)
    return result


def train_configurations(rank, world_size, *, configurations, **arguments):
    """The worker `run_on_ranks` starts: `train_configuration` for each configuration in turn, in one process group."""
    return [train_configuration(rank, world_size, configuration=configuration, **arguments)
            for configuration in configurations]  # fmt: skip
