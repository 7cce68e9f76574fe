"""Checkpoints and BatchNorm's buffers: what a parameters-only checkpoint leaves out.

`model.parameters()` / `named_parameters()` hold gamma and beta but not BatchNorm's buffers
(`running_mean`, `running_var`, `num_batches_tracked`); `state_dict()` holds both.
"""


def parameters_only(model):
    """{name: tensor} of `named_parameters()` (detached copies): the checkpoint that forgets the buffers."""
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def missing_buffers(model, checkpoint):
    """Sorted names of the buffers of `model`'s state_dict that `checkpoint` (a dict of tensors) lacks."""
    buffers = {name for name, _ in model.named_buffers()}
    return sorted(name for name in model.state_dict() if name in buffers and name not in checkpoint)
