"""Gradient accumulation is not a larger batch for BatchNorm: each micro-batch is normalized with its own statistics.

Accumulating the gradients of k micro-batches of B (each loss scaled by 1/k) gives the gradient of the mean
loss over the k·B examples exactly when every example's output depends on that example alone. BatchNorm in
train mode makes an output depend on the other examples of its batch, so the micro-batches normalize with
statistics of B examples, not k·B: outputs and gradients differ.
"""

import copy

import torch
import torch.nn.functional as F

from bnlib.checks import check_integer
from bnlib.runs import mlp_spec, preserved_random_state


def accumulated_gradient(model, images, labels, micro_batches):
    """(train-mode outputs (N, classes), flat gradient) of the mean cross-entropy over `images`, computed in
    `micro_batches` equal chunks whose losses, scaled by 1/micro_batches, accumulate their gradients."""
    check_integer("micro_batches", micro_batches, minimum=1)
    if len(images) % micro_batches:
        raise ValueError(f"micro_batches must divide the {len(images)} images, got {micro_batches}")
    model = copy.deepcopy(model).train()
    outputs = []
    for chunk, chunk_labels in zip(images.chunk(micro_batches), labels.chunk(micro_batches), strict=True):
        output = model(chunk)
        (F.cross_entropy(output, chunk_labels) / micro_batches).backward()  # .grad sums over the micro-batches
        outputs.append(output.detach())
    gradient = torch.cat([parameter.grad.flatten() for parameter in model.parameters()])
    return torch.cat(outputs), gradient


def accumulation_rows(models, images, labels, micro_batches, seed):
    """One row per `models` entry (name -> make_mlp options): how far the accumulated micro-batches' outputs and
    gradient are from one batch of all `images` (same initial weights, drawn from `seed`)."""
    rows = []
    for name, options in models.items():
        with preserved_random_state():  # the notebook's random state stays where it was
            model = mlp_spec(options).build(seed)
        whole_outputs, whole_gradient = accumulated_gradient(model, images, labels, 1)
        outputs, gradient = accumulated_gradient(model, images, labels, micro_batches)
        rows.append({
            "model": name,
            "max |output difference|": (outputs - whole_outputs).abs().max().item(),
            "max |gradient difference|": (gradient - whole_gradient).abs().max().item(),
            "relative gradient difference": ((gradient - whole_gradient).norm() / whole_gradient.norm()).item(),
        })  # fmt: skip
    return rows
