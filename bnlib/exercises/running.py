"""Notebook 04's exercise: one update of the running statistics, for (N, C) input (`check_running_update`) and for
(N, C, L) and (N, C, H, W) input (`check_running_update_nd`), where the statistics cover every dimension but C.
The update takes no eps, so these checks have no eps to vary."""

import torch
from torch import nn

from bnlib.exercises import cases
from bnlib.exercises.base import TIME_LIMIT, Exercise, Mistake
from bnlib.exercises.harness import run_exercise
from bnlib.exercises.mistakes import as_float64

LAYERS = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}


def per_channel(values):
    """(N, C, ...) -> (n, C), every value of a channel in its column: n = N · L or N · H · W."""
    return values.transpose(0, 1).reshape(values.shape[1], -1).T


def _running_reference(case):
    running_mean, running_var, values, momentum, step = case.args
    layer = LAYERS[values.dim()](values.shape[1], momentum=momentum, dtype=torch.float64).train()
    with torch.no_grad():
        layer.running_mean.copy_(running_mean)
        layer.running_var.copy_(running_var)
        layer.num_batches_tracked.fill_(step - 1)  # PyTorch counts this batch before it updates
        layer(values.double())
    return {"mean": layer.running_mean.clone(), "var": layer.running_var.clone()}


def _statistics(case):
    """running mean, running var, the batch as (n, C), in float64."""
    running_mean, running_var, values = as_float64(*case.args[:3])
    return running_mean, running_var, per_channel(values)


def _factor(case):
    momentum, step = case.args[3:]
    return 1.0 / step if momentum is None else momentum


def _update(case, factor=None, mean=None, var=None):
    """PyTorch's rule, running = (1 - factor) * running + factor * batch, with the batch's statistics replaceable."""
    running_mean, running_var, values = _statistics(case)
    factor = _factor(case) if factor is None else factor
    mean = values.mean(0) if mean is None else mean
    var = values.var(0) if var is None else var
    return {"mean": (1 - factor) * running_mean + factor * mean, "var": (1 - factor) * running_var + factor * var}


def _fixed_factor(case, got):
    """The update with the factor the student's running mean implies, when momentum=None and it is not 1/step."""
    running_mean, _, values = _statistics(case)
    if case.args[3] is not None:
        return None
    factor = ((got["mean"] - running_mean) / (values.mean(0) - running_mean)).median().item()
    return None if abs(factor - _factor(case)) < 1e-9 else _update(case, factor)


def _correction(case):
    n = _statistics(case)[2].shape[0]
    return n / (n - 1)


def _around_running_mean(unbiased):
    def predict(case, got):
        running_mean, _, values = _statistics(case)
        squares = (values - running_mean).pow(2).sum(0)
        return {"var": _update(case, var=squares / (len(values) - unbiased))["var"]}
    return predict


def _wrong_count(case, got):
    """The variance divided by N − 1 though it covers N · L (or N · H · W) values."""
    _, _, values = _statistics(case)
    n = case.args[2].shape[0]
    if case.args[2].dim() == 2 or n < 2:
        return None
    return {"var": _update(case, var=(values - values.mean(0)).pow(2).sum(0) / (n - 1))["var"]}


def _running_scales(case):
    running_mean, running_var, values = _statistics(case)
    spread = torch.stack([running_mean.abs(), values.mean(0).abs(), values.std(0)]).amax(0)
    return {"mean": spread, "var": torch.maximum(running_var, values.var(0))}


CORRECTION = "n/(n − 1) applied twice or to the mean"
CORRECTION_HINT = ("The correction n/(n − 1) turns the biased batch variance into the unbiased one, once; the "
                   "mean needs none.")
AROUND = "the variance taken around the running mean"
AROUND_HINT = "The batch variance is taken around this batch's own mean, not around the running mean."
MISTAKES = (
    Mistake("the update the wrong way round (the Keras convention)",
            "PyTorch's momentum is the weight of the new batch's statistics, not of the running value.",
            lambda case, got: None if case.args[3] is None else _update(case, 1 - case.args[3])),
    Mistake("the biased variance in running_var",
            "running_var stores the unbiased batch variance (divided by n − 1), while training mode "
            "normalizes with the biased one.",
            lambda case, got: {"var": _update(case, var=_statistics(case)[2].var(0, unbiased=False))["var"]}),
    Mistake(CORRECTION, CORRECTION_HINT,
            lambda case, got: {"var": _update(case, var=_statistics(case)[2].var(0) * _correction(case))["var"]}),
    Mistake(CORRECTION, CORRECTION_HINT,
            lambda case, got: {"mean": _update(case, mean=_statistics(case)[2].mean(0) * _correction(case))["mean"]}),
    Mistake(AROUND, AROUND_HINT, _around_running_mean(True)),
    Mistake(AROUND, AROUND_HINT, _around_running_mean(False)),
    Mistake("mean and variance swapped", "Return (new running mean, new running variance), in that order.",
            lambda case, got: dict(zip(("var", "mean"), _update(case).values(), strict=True))),
    Mistake("momentum=None with the factor 1/(step + 1)",
            "step is this batch's number counted from 1 (num_batches_tracked after the update): "
            "the factor is 1/step.",
            lambda case, got: None if case.args[3] is not None else _update(case, 1 / (case.args[4] + 1))),
    Mistake("momentum=None treated as a fixed factor",
            "momentum=None means the cumulative average: the factor is 1/step (1, 1/2, 1/3, ...), so every "
            "batch so far weighs the same, unlike any fixed factor.", _fixed_factor),
)
ARGUMENTS = ("running_mean", "running_var", "batch", "momentum", "step")
RUNNING = Exercise("check_running_update", ARGUMENTS, ("mean", "var"), _running_reference, _running_scales,
                   mistakes=MISTAKES)
RUNNING_ND = Exercise(
    "check_running_update_nd", ARGUMENTS, ("mean", "var"), _running_reference, _running_scales,
    mistakes=(Mistake("the count N − 1 instead of N · L − 1 (or N · H · W − 1)",
                      "The statistics cover every value of a channel, N · L of them (N · H · W for images): the "
                      "unbiased variance divides by that count minus 1.", _wrong_count), *MISTAKES))


def check_running_update(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(running_mean, running_var, batch, momentum, step) -> (new_mean, new_var) for batch (N, C) against
    nn.BatchNorm1d; step counts batches from 1, momentum=None is the cumulative average."""
    return run_exercise(RUNNING, fn, cases.running_cases(z), strict=strict, time_limit_s=time_limit)


def check_running_update_nd(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(running_mean, running_var, batch, momentum, step) -> (new_mean, new_var) for batch (N, C, L) against
    nn.BatchNorm1d and (N, C, H, W) against nn.BatchNorm2d: statistics over every dimension but C."""
    return run_exercise(RUNNING_ND, fn, cases.running_nd_cases(z), strict=strict, time_limit_s=time_limit)
