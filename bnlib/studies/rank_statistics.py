"""What the ranks of a data-parallel run recorded, compared: DDP's buffer sync, the spread over ranks, rank 0's
checkpoint, and two runs side by side.

The runs are `bnlib.studies.data_parallel`'s CachedRuns: tensors "rank<r>/<layer>/<name>" of shape (steps, C)
for name in ddp_worker.RECORDED, and rank 0's final state as the model.
"""

import torch

from bnlib.stats.running import replay_running_average


def rank_layers(run):
    """The BatchNorm layers' names in the run's recording, in model order."""
    names = {name.split("/")[1] for name in run.tensors if name.startswith("rank0/")}
    return sorted(names, key=lambda name: [int(part) if part.isdigit() else part for part in name.split(".")])


def recorded(run, rank, layer, name):
    """(steps, C): what rank `rank` recorded as `name` in `layer`."""
    return run.tensors[f"rank{rank}/{layer}/{name}"]


def buffer_sync_check(run, momentum=0.1):
    """Per layer: do the buffers every rank's forward pass found equal rank 0's buffers after the step before, bit
    for bit; and the largest |buffer after the step - ((1 - momentum) * found + momentum * own shard)| over ranks,
    steps and units, for running_mean and running_var (the shard's unbiased variance)."""
    rows = []
    for layer in rank_layers(run):
        found_rank0, relation = True, 0.0
        for rank in range(run.record["world_size"]):
            for stat in ("mean", "var"):
                found = recorded(run, rank, layer, f"seen_{stat}")
                after = recorded(run, rank, layer, f"running_{stat}")
                found_rank0 &= torch.equal(found[1:], recorded(run, 0, layer, f"running_{stat}")[:-1])
                expected = (1 - momentum) * found + momentum * recorded(run, rank, layer, f"shard_{stat}")
                relation = max(relation, (after - expected).abs().max().item())
        rows.append({"layer": layer, "found rank 0's buffers, bit for bit": found_rank0,
                     f"max |buffer - ({1 - momentum:g} found + {momentum:g} own shard)|": relation})  # fmt: skip
    return rows


def rank_spread(run, name):
    """(steps,): the largest |rank r's `name` - rank 0's| over ranks, units and BatchNorm layers, at each step."""
    spread = torch.zeros(len(recorded(run, 0, rank_layers(run)[0], name)))
    for layer in rank_layers(run):
        first = recorded(run, 0, layer, name)
        for rank in range(1, run.record["world_size"]):
            spread = torch.maximum(spread, (recorded(run, rank, layer, name) - first).abs().amax(1))
    return spread


def checkpoint_running_mean(run, layer, momentum=0.1):
    """(max |rank 0's final running_mean - the rule replayed over rank 0's shard means|, the same against the
    rule replayed over the global batch means, the ranks' shard means averaged): whose batches a checkpoint
    saved from rank 0 holds. Shards of equal size: the global mean is the mean of the shard means."""
    final = run.model.state_dict()[f"{layer}.running_mean"].double().numpy()
    shard_means = torch.stack([recorded(run, rank, layer, "shard_mean") for rank in range(run.record["world_size"])])
    own = replay_running_average(shard_means[0], momentum)[-1]
    whole = replay_running_average(shard_means.mean(0), momentum)[-1]
    return abs(final - own).max(), abs(final - whole).max()


def max_difference(run, other, name, rank=0):
    """The largest |difference| of `name` between two runs' recordings over steps, units and layers."""
    return max((recorded(run, rank, layer, name) - recorded(other, 0, layer, name)).abs().max().item()
               for layer in rank_layers(run))  # fmt: skip


def max_weight_difference(run, other):
    """The largest |difference| between two runs' final parameters and buffers (floating point ones)."""
    theirs = other.model.state_dict()
    return max((tensor - theirs[name]).abs().max().item() for name, tensor in run.model.state_dict().items()
               if tensor.is_floating_point())  # fmt: skip
