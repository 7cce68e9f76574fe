"""Notebook 09, section 6: weight decay and BatchNorm. In train mode a weight directly before a BatchNorm is
scale-invariant: with eps = 0, f(c W) = f(W) for any c > 0, so the gradient at c W is the gradient at W divided
by c (van Laarhoven 2017, "L2 regularization versus batch and weight normalization"). Decay on it cannot change
what the network computes, only |W|, and with it the size of the steps. Parameter groups can leave it out, with
BatchNorm's gamma and beta.
"""

import copy
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bnlib.checks import check_choice, check_number
from bnlib.data import lecture_loaders
from bnlib.models import count_parameters
from bnlib.runs import cached_run, describe_run, run_key, stored_tensors
from bnlib.stats.batchnorm import BATCHNORM_TYPES
from bnlib.stats.folding import flat_layers
from bnlib.train import sgd_key, train_model

DECAYED = ("every parameter", "not BatchNorm's")  # the two parameter-group choices notebook 09 compares


def scale_invariant_layers(model):
    """(name, layer) of every layer of the nn.Sequential `model` that a BatchNorm directly follows."""
    layers = list(flat_layers(model))
    return [layers[index - 1] for index, (_, layer) in enumerate(layers)
            if index > 0 and isinstance(layer, BATCHNORM_TYPES)]  # fmt: skip


def parameter_groups(model, weight_decay, decayed):
    """SGD parameter groups: "every parameter" decays all; "not BatchNorm's" leaves out gamma, beta and the
    scale-invariant weights before each BatchNorm (decay 0 for those)."""
    check_choice("decayed", decayed, DECAYED)
    check_number("weight_decay", weight_decay, 0, None)
    excluded = set()
    if decayed == "not BatchNorm's":
        excluded = {id(parameter) for _, layer in scale_invariant_layers(model) for parameter in layer.parameters()}
        excluded |= {id(parameter) for module in model.modules() if isinstance(module, BATCHNORM_TYPES)
                     for parameter in module.parameters()}  # fmt: skip
    parameters = list(model.parameters())
    return [{"params": [p for p in parameters if id(p) not in excluded], "weight_decay": weight_decay},
            {"params": [p for p in parameters if id(p) in excluded], "weight_decay": 0.0}]  # fmt: skip


@dataclass
class ScaleInvariance:
    """f(c W) against f(W) for every scale-invariant W of a model in train mode, on one batch."""

    factor: float
    output_gap: float  # largest |logits(c W) − logits(W)|
    output_scale: float  # largest |logits(W)|
    gradient_gap: float  # largest |c · grad(c W) − grad(W)| over the scaled weights
    gradient_scale: float  # largest |grad(W)| over them


def measure_scale_invariance(model, images, labels, factor=5.0, eps=None, dtype=torch.float64):
    """A ScaleInvariance of a copy of `model` in `dtype` and train mode (every BatchNorm's eps set to `eps` if given),
    its scale-invariant weights multiplied by `factor`."""
    check_number("factor", factor, 0, None, low_open=True)
    if not scale_invariant_layers(model):
        raise ValueError("model has no layer directly before a BatchNorm: no weight of it is scale-invariant")
    results = []
    for scale in (1.0, factor):
        copied = copy.deepcopy(model).to(dtype).train()
        for module in copied.modules():
            if isinstance(module, BATCHNORM_TYPES) and eps is not None:
                module.eps = eps
        weights = [layer.weight for _, layer in scale_invariant_layers(copied)]
        with torch.no_grad():
            for weight in weights:
                weight.mul_(scale)
        logits = copied(images.to(dtype))
        F.cross_entropy(logits, labels).backward()
        results.append((logits.detach(), [weight.grad * scale for weight in weights]))
    (logits, gradients), (scaled_logits, scaled_gradients) = results
    return ScaleInvariance(
        factor=factor,
        output_gap=(scaled_logits - logits).abs().max().item(),
        output_scale=logits.abs().max().item(),
        gradient_gap=max((a - b).abs().max().item() for a, b in zip(scaled_gradients, gradients, strict=True)),
        gradient_scale=max(gradient.abs().max().item() for gradient in gradients),
    )


def train_decay_run(model, *, decayed, weight_decay, seed, num_epochs, batch_size, learning_rate, data, device,
                    on_epoch=None):  # fmt: skip
    """(record, tensors) of `model` (a ModelSpec) trained by SGD with `parameter_groups(..., decayed)`."""
    trained = model.build(seed)
    optimizer = torch.optim.SGD(parameter_groups(trained, weight_decay, decayed), lr=learning_rate)
    history = train_model(trained, num_epochs, *lecture_loaders(data, batch_size, seed, device), optimizer=optimizer,
                          device=device, seed=seed, progress=on_epoch is None, on_epoch=on_epoch)  # fmt: skip
    record = {"history": history.to_dict(), "num_params": count_parameters(trained), "interrupted": history.interrupted}
    return record, stored_tensors(trained)


def decay_run(model, *, decayed, weight_decay, seed, num_epochs, batch_size, learning_rate, data, device=None,
              on_epoch=None):  # fmt: skip
    """The CachedRun of `train_decay_run`, read from the run cache when stored."""
    key = run_key("train_with_weight_decay", model, learning_rate, seed=seed, num_epochs=num_epochs,
                  batch_size=batch_size)  # fmt: skip
    key["optimizer"] = {**sgd_key(learning_rate), "weight_decay": weight_decay, "decayed": decayed}
    compute = functools.partial(train_decay_run, model, decayed=decayed, weight_decay=weight_decay, seed=seed,
                                num_epochs=num_epochs, batch_size=batch_size, learning_rate=learning_rate, data=data,
                                device=device, on_epoch=on_epoch)  # fmt: skip
    description = describe_run(model, f"weight decay {weight_decay:g} on {decayed}", f"seed {seed}",
                               f"{num_epochs} epochs")  # fmt: skip
    return cached_run(key, model, compute, data=data, device=device, description=description)


def weight_norms(model):
    """{name: |W|} of the scale-invariant weights, and "gamma" (the norm of all BatchNorm weights together)."""
    norms = {name: layer.weight.norm().item() for name, layer in scale_invariant_layers(model)}
    gammas = [module.weight for module in model.modules() if isinstance(module, BATCHNORM_TYPES) and module.affine]
    norms["gamma"] = torch.cat(gammas).norm().item() if gammas else float("nan")
    return norms
