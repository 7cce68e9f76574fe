"""Notebook 09, section 5: BatchNorm under torch.autocast with bfloat16. Autocast runs convolutions and Linear
layers in bfloat16; BatchNorm then normalizes bfloat16 activations, but its running statistics stay float32."""

import copy
from contextlib import contextmanager

import torch

from bnlib.config import BATCH_SIZE
from bnlib.data import TensorLoader
from bnlib.runtime import model_device
from bnlib.stats.batchnorm import batchnorm_layers
from bnlib.train import compute_accuracy

AUTOCAST_DTYPE = torch.bfloat16  # CPU autocast's default dtype; float16 autocast is mostly a GPU feature


def bfloat16_autocast(device):
    """torch.autocast for `device`'s type with bfloat16."""
    return torch.autocast(device_type=torch.device(device).type, dtype=AUTOCAST_DTYPE)


@contextmanager
def recorded_output_dtypes(model):
    """Inside the block, {layer name: (layer type, dtype of its last output)} for the leaf layers of `model`."""
    dtypes, hooks = {}, []
    for name, layer in model.named_modules():
        if not list(layer.children()):
            hooks.append(layer.register_forward_hook(
                lambda layer, inputs, output, name=name: dtypes.update({name: (type(layer).__name__, output.dtype)})))
    try:
        yield dtypes
    finally:
        for hook in hooks:
            hook.remove()


def dtypes_in_train_step(model, images):
    """Rows for a table: one train-mode forward of a copy of `model` on `images` under bfloat16 autocast, each leaf
    layer's output dtype and, for BatchNorm, its buffers' dtype and their largest change from the same step in
    float32 (both copies start from `model`'s buffers); "" in those columns for the other layers."""
    device = model_device(model)
    under_autocast, in_float32 = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    images = images.to(device)
    with torch.no_grad(), recorded_output_dtypes(under_autocast) as dtypes, bfloat16_autocast(device):
        under_autocast(images)
    with torch.no_grad():
        in_float32(images)
    reference = dict(batchnorm_layers(in_float32))
    rows = []
    for name, (kind, dtype) in dtypes.items():
        row = {"layer": f"{name} ({kind})", "output dtype": str(dtype).removeprefix("torch."),
               "running statistics dtype": "", "max |change vs float32 pass|": ""}  # filled for BatchNorm layers
        if name in reference:
            layer = under_autocast.get_submodule(name)
            row["running statistics dtype"] = str(layer.running_mean.dtype).removeprefix("torch.")
            row["max |change vs float32 pass|"] = max(
                (getattr(layer, buffer) - getattr(reference[name], buffer)).abs().max().item()
                for buffer in ("running_mean", "running_var"))  # fmt: skip
        rows.append(row)
    return rows


@torch.no_grad()
def compare_accuracy(model, images, labels, batch_size=BATCH_SIZE):
    """{"float32": accuracy, "bfloat16 autocast": accuracy} in percent of the eval-mode `model` on `images` (N, ...)
    and `labels` (N,), in batches of `batch_size`."""
    model, loader = copy.deepcopy(model).eval(), TensorLoader(images, labels, batch_size)
    float32 = compute_accuracy(model, loader)
    with bfloat16_autocast(model_device(model)):
        lower = compute_accuracy(model, loader)
    return {"float32": float32, f"{str(AUTOCAST_DTYPE).removeprefix('torch.')} autocast": lower}
