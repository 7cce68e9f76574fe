"""BatchNorm without running statistics (`track_running_stats=False`): every batch normalized by its own statistics."""

import copy

from bnlib.batchnorm import batchnorm_layers


def with_per_batch_statistics(model):
    """A copy of `model` whose BatchNorm layers keep no buffers and use each batch's statistics, in eval mode too.

    This is what `nn.BatchNorm1d(..., track_running_stats=False)` builds: gamma and beta are kept,
    `running_mean`, `running_var` and `num_batches_tracked` are None and leave the state_dict.
    """
    model = copy.deepcopy(model)
    for _, layer in batchnorm_layers(model):
        layer.track_running_stats = False
        layer.running_mean = layer.running_var = layer.num_batches_tracked = None
    return model
