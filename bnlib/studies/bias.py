"""Notebooks 02 and 09: a bias before BatchNorm matters in eval mode only until the running mean absorbs it.

Two BatchNorm networks (MLPs, or CNNs) with identical weights, one with a bias in every hidden Linear or
convolution and one without, train on the same batches. In train mode their outputs agree; in eval mode the
first BatchNorm's running means differ by b · (1 − (1 − momentum)^t) after t steps (PyTorch's rule, running_mean
starting at 0), so its eval outputs differ by the offset γ · b · (1 − momentum)^t / √(running_var + eps).
"""

import json
import math
from dataclasses import dataclass

import torch

from bnlib.cache import cached
from bnlib.checks import check_integer, check_number
from bnlib.data import training_loader
from bnlib.models import input_layer, make_mlp
from bnlib.runs import factory_name
from bnlib.runtime import resolve_device, seed_everything
from bnlib.stats.batchnorm import first_batchnorm
from bnlib.train import evaluation_mode, sgd, train_step


def make_bias_pair(seed, bias_std=1.0, factory=make_mlp, **model_options):
    """{"with bias": model, "without bias": model}: `factory(bn="before", ...)` (make_mlp or make_cnn), identical
    weights, different biases.

    "with bias" has a bias in every hidden Linear (or convolution): the first one's is drawn from
    N(0, bias_std²), larger than PyTorch's default, so that its effect is easy to see; the later ones keep
    PyTorch's default initialization. "without bias" has no bias before a BatchNorm.
    """
    check_number("bias_std", bias_std, 0, None, low_open=True)
    seed_everything(seed)
    pair = {name: factory(bn="before", bias=bias, **model_options)
            for name, bias in (("with bias", True), ("without bias", False))}
    pair["without bias"].load_state_dict(pair["with bias"].state_dict(), strict=False)  # all but the biases
    with torch.no_grad():
        input_layer(pair["with bias"]).bias.normal_(0.0, bias_std)
    return pair


@torch.no_grad()
def eval_outputs(model, probe):
    """(the first BatchNorm's output, the logits) of `model` on `probe` in eval mode; the model stays in train mode."""
    norm, outputs = first_batchnorm(model), []
    handle = norm.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        with evaluation_mode(model):  # back in train mode for the next training step
            logits = model(probe)
    finally:
        handle.remove()
    return outputs[0], logits


class StepDifferences:
    """After every step, what separates the two models (with bias minus without) in eval mode on the probe batch.

    Only reductions are kept, (C,) or one number per step: a CNN's feature maps for every step would not fit in memory.
    """

    def __init__(self):
        self.running_means, self.logit_gaps, self.offsets, self.running_vars, self.running_var_gaps = [], [], [], [], []

    @torch.no_grad()
    def record(self, with_bias, without_bias, probe):
        (first_with, logits_with), (first_without, logits_without) = (eval_outputs(model, probe)
                                                                      for model in (with_bias, without_bias))
        norm_with, norm_without = first_batchnorm(with_bias), first_batchnorm(without_bias)
        self.running_means.append(norm_with.running_mean - norm_without.running_mean)
        self.logit_gaps.append((logits_with - logits_without).abs().max())
        self.offsets.append((first_with - first_without).abs().max())
        self.running_vars.append(norm_with.running_var.mean())  # the same in both models: a shift leaves it alone
        self.running_var_gaps.append((norm_with.running_var - norm_without.running_var).abs().max())


@dataclass
class BiasTrace:
    """What `trace_bias_pair` measured, one entry per training step t = 1..T."""

    measured: torch.Tensor  # (T,) (running_mean with − without bias), as a fraction of b (least squares)
    expected: torch.Tensor  # (T,) 1 − (1 − momentum)^t, PyTorch's rule from running_mean = 0
    logit_gap: torch.Tensor  # (T,) largest |difference| of the two models' eval logits on the probe batch
    offset: torch.Tensor  # (T,) largest |difference| of the first BatchNorm's eval outputs on the probe batch
    running_var: torch.Tensor  # (T,) the first BatchNorm's running_var, mean over units (the same in both models)
    running_var_gap: float  # largest |difference| of running_var over all steps (a shift leaves a variance alone)

    @property
    def steps(self):
        return torch.arange(1, len(self.measured) + 1)

    @property
    def gain(self):
        """(T,) logit gap per unit of offset: how strongly the layers after the first BatchNorm pass a difference on."""
        return self.logit_gap / self.offset


def fraction_of(differences, bias):
    """Least-squares fit of each row of `differences` (T, C) as a multiple of `bias` (C,): (T,)."""
    return differences @ bias / (bias @ bias)


def trace_bias_pair(pair, data, *, batch_size, learning_rate, seed, min_steps=100, device=None):
    """Train both models of `make_bias_pair` on the same batches (SGD), step by step side by side, for whole epochs
    of at least `min_steps` steps; a BiasTrace.

    The probe is the first `batch_size` validation images, scored in eval mode after every step.
    """
    check_integer("min_steps", min_steps, minimum=1)
    check_number("learning_rate", learning_rate, 0, None, low_open=True)
    device = resolve_device(device)
    probe = data.split("valid", batch_size)[0].to(device)
    bias = input_layer(pair["with bias"]).bias.detach().clone().to(device)
    models = [pair[name].to(device).train() for name in ("with bias", "without bias")]
    optimizers = [sgd(model.parameters(), learning_rate) for model in models]
    loader = training_loader(data.train, batch_size, seed, device)
    differences, step = StepDifferences(), 0
    for _ in range(math.ceil(min_steps / len(loader))):
        for images, labels in loader:
            step += 1
            for model, optimizer in zip(models, optimizers, strict=True):
                torch.manual_seed(seed + step)  # the same dropout masks, if the models have dropout, in both
                train_step(model, optimizer, images, labels, device)
            differences.record(*models, probe)
    for model in models:
        model.eval()
    momentum = first_batchnorm(pair["with bias"]).momentum
    steps = torch.arange(1, len(differences.logit_gaps) + 1)
    return BiasTrace(
        measured=fraction_of(torch.stack(differences.running_means), bias).cpu(),
        expected=1 - (1 - momentum) ** steps,
        logit_gap=torch.stack(differences.logit_gaps).cpu(),
        offset=torch.stack(differences.offsets).cpu(),
        running_var=torch.stack(differences.running_vars).cpu(),
        running_var_gap=torch.stack(differences.running_var_gaps).max().item(),
    )


TRACE_TENSORS = ("measured", "expected", "logit_gap", "offset", "running_var")  # BiasTrace's (T,) fields


def cached_bias_trace(factory, model_options, data, *, seed, bias_std, batch_size, learning_rate, min_steps,
                      device=None):  # fmt: skip
    """The BiasTrace of `make_bias_pair(seed, bias_std, factory, **model_options)` trained by `trace_bias_pair`,
    read from the run cache when stored (keyed by all of these and the data), else computed and stored."""
    def compute():
        pair = make_bias_pair(seed, bias_std, factory, **model_options)
        trace = trace_bias_pair(pair, data, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                                min_steps=min_steps, device=device)  # fmt: skip
        return {"running_var_gap": trace.running_var_gap}, {name: getattr(trace, name) for name in TRACE_TENSORS}

    options = json.loads(json.dumps(model_options))  # as the cache stores it: tuples become lists
    key = {"procedure": "trace_bias_pair", "factory": factory_name(factory), "model_options": options,
           "seed": seed, "bias_std": bias_std, "batch_size": batch_size, "learning_rate": learning_rate,
           "min_steps": min_steps}  # fmt: skip
    entry = cached(key, compute, data=data, device=resolve_device(device), description=f"bias trace, {key['factory']}")
    return BiasTrace(**entry.tensors, running_var_gap=entry.record["running_var_gap"])
