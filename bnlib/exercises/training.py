"""The training-time exercises: BatchNorm's forward pass in training mode, its backward pass (notebook 02),
and one update of the running statistics (notebook 04)."""

import torch
import torch.nn.functional as F
from torch import nn

from bnlib.exercises import cases
from bnlib.exercises.harness import Exercise, Mistake, passes_in_float64, run_exercise

CANCELLATION_HINT = ("Your answer is right when the same numbers come in float64 but not in float32: E[z²] − E[z]² "
                     "subtracts two nearly equal numbers when the mean is large next to the spread, and float32 "
                     "loses the digits. Compute the variance as the mean of (z − mean)².")


def normalize(z, mean, var, gamma, beta, eps):
    """gamma * (z - mean) / sqrt(var + eps) + beta: (N, C) with (C,) statistics."""
    return gamma * (z - mean) / torch.sqrt(var + eps) + beta


def as_float64(*values):
    """The tensors as float64 copies, detached: every reference and mistake formula computes in float64."""
    return tuple(value.detach().to(torch.float64) for value in values)


def column_rms(values):
    """Root mean square of each column: (N, C) -> (C,)."""
    return values.pow(2).mean(0).sqrt()


# --- training-mode forward: fn(z, gamma, beta, eps) -> (N, C) ---

def _train_reference(case):
    z, gamma, beta, eps = case.args
    return {"output": F.batch_norm(*as_float64(z), None, None, *as_float64(gamma, beta), training=True, eps=eps)}


def _train_mistake(formula):
    """A Mistake formula from formula(z, gamma, beta, eps, mean, var) on the case's float64 inputs."""
    def predict(case, got):
        z, gamma, beta, eps = case.args
        z, gamma, beta = as_float64(z, gamma, beta)
        return {"output": formula(z, gamma, beta, eps, z.mean(0), z.var(0, unbiased=False))}
    return predict


TRAIN = Exercise(
    "check_batchnorm_train", ("z", "gamma", "beta", "eps"), ("output",), _train_reference,
    lambda case: {"output": case.args[1].double().abs()},
    mistakes=(
        Mistake("the unbiased variance in the normalization",
                "Training mode divides by N (the biased variance, `unbiased=False`), not by N − 1.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, z.var(0), g, b, eps))),
        Mistake("eps outside the square root", "Divide by sqrt(var + eps), not by sqrt(var) + eps.",
                _train_mistake(lambda z, g, b, eps, mean, var: g * (z - mean) / (var.sqrt() + eps) + b)),
        Mistake("eps left out", "Add eps to the variance before the square root: it keeps a unit whose batch "
                "variance is about 0 from blowing up.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, var, g, b, 0.0))),
        Mistake("statistics over the wrong dimension",
                "z is (N, C): each unit (column) gets its own mean and variance over the batch, dim=0.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(
                    z, z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True), g, b, eps))),
        Mistake("gamma and beta left out", "Scale by gamma and shift by beta after normalizing.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, var, 1.0, 0.0, eps))),
        Mistake("gamma left out", "Multiply the normalized values by gamma.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, var, 1.0, b, eps))),
        Mistake("beta left out", "Add beta after scaling by gamma.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, var, g, 0.0, eps))),
        Mistake("the variance as E[z²] − E[z]² (catastrophic cancellation)", CANCELLATION_HINT,
                detect=lambda fn, case, got: passes_in_float64(TRAIN, fn, case)),
    ),
)


def check_batchnorm_train(fn, *, z=None, strict=False):
    """Check fn(z, gamma, beta, eps) -> (N, C) against `F.batch_norm` in training mode; a CheckResult."""
    return run_exercise(TRAIN, fn, cases.train_cases(z), strict=strict)


# --- its backward pass: fn(dout, z, gamma, eps) -> (dz, dgamma, dbeta) ---

def _gradients(forward, case):
    """{dz, dgamma, dbeta} of forward(z, gamma, beta, eps) by autograd in float64."""
    dout, z, gamma, eps = case.args
    z, gamma = (value.requires_grad_() for value in as_float64(z, gamma))
    beta = torch.zeros_like(gamma, requires_grad=True)
    with torch.enable_grad():
        forward(z, gamma, beta, eps).backward(dout.double())
    return {"dz": z.grad, "dgamma": gamma.grad, "dbeta": beta.grad}


def _reference_forward(z, gamma, beta, eps):
    return F.batch_norm(z, None, None, gamma, beta, training=True, eps=eps)


def _backward_scales(case):
    dout, z, gamma, eps = as_float64(*case.args[:3]) + (case.args[3],)
    spread = column_rms(dout)
    return {"dz": gamma.abs() * spread / torch.sqrt(z.var(0, unbiased=False) + eps),
            "dgamma": z.shape[0] * spread, "dbeta": z.shape[0] * spread}


def _changed_reference(change):
    """A Mistake formula that changes PyTorch's own gradients: change(gradients, case) -> the changed parts."""
    return lambda case, got: change(_gradients(_reference_forward, case), case)


BACKWARD = Exercise(
    "check_batchnorm_backward", ("dout", "z", "gamma", "eps"), ("dz", "dgamma", "dbeta"),
    lambda case: _gradients(_reference_forward, case), _backward_scales,
    mistakes=(
        Mistake("the batch mean and variance treated as constants",
                "Both depend on every z in the batch: dz has the terms through the mean and the variance, "
                "dz = gamma / sqrt(var + eps) · (dout − mean(dout) − ẑ · mean(dout · ẑ)).",
                lambda case, got: _gradients(lambda z, g, b, eps: normalize(
                    z, z.mean(0).detach(), z.var(0, unbiased=False).detach(), g, b, eps), case)),
        Mistake("the unbiased variance in the normalization",
                "Training mode divides by N (the biased variance), in the backward pass too.",
                lambda case, got: _gradients(lambda z, g, b, eps: normalize(z, z.mean(0), z.var(0), g, b, eps), case)),
        Mistake("eps outside the square root", "The forward pass divides by sqrt(var + eps).",
                lambda case, got: _gradients(lambda z, g, b, eps: g * (z - z.mean(0)) / (
                    z.var(0, unbiased=False).sqrt() + eps) + b, case)),
        Mistake("gamma left out of dz", "The output is gamma · ẑ + beta, so dz carries the factor gamma.",
                _changed_reference(lambda grads, case: {"dz": grads["dz"] / case.args[2].double()})),
        Mistake("dgamma and dbeta averaged instead of summed over the batch",
                "Every example contributes to gamma and beta: sum over dim=0, do not average.",
                _changed_reference(lambda grads, case: {name: grads[name] / case.args[1].shape[0]
                                                        for name in ("dgamma", "dbeta")})),
        Mistake("the variance as E[z²] − E[z]² (catastrophic cancellation)", CANCELLATION_HINT,
                detect=lambda fn, case, got: passes_in_float64(BACKWARD, fn, case)),
    ),
)


def check_batchnorm_backward(fn, *, z=None, strict=False):
    """Check fn(dout, z, gamma, eps) -> (dz, dgamma, dbeta) against autograd through `F.batch_norm`."""
    return run_exercise(BACKWARD, fn, cases.backward_cases(z), strict=strict)


# --- one running-statistics update: fn(running_mean, running_var, batch, momentum, step) -> (mean, var) ---

def _running_reference(case):
    running_mean, running_var, values, momentum, step = case.args
    layer = nn.BatchNorm1d(values.shape[1], momentum=momentum, dtype=torch.float64).train()
    with torch.no_grad():
        layer.running_mean.copy_(running_mean)
        layer.running_var.copy_(running_var)
        layer.num_batches_tracked.fill_(step - 1)  # PyTorch counts this batch before it updates
        layer(values.double())
    return {"mean": layer.running_mean.clone(), "var": layer.running_var.clone()}


def _update(case, factor, unbiased=True):
    """PyTorch's rule, running = (1 - factor) * running + factor * batch, with a given factor."""
    running_mean, running_var, values = as_float64(*case.args[:3])
    return {"mean": (1 - factor) * running_mean + factor * values.mean(0),
            "var": (1 - factor) * running_var + factor * values.var(0, unbiased=unbiased)}


def _factor(case):
    momentum, step = case.args[3:]
    return 1.0 / step if momentum is None else momentum


def _fixed_factor(case, got):
    """The update with the factor the student's running mean implies, when momentum=None and it is not 1/step."""
    running_mean, _, values = as_float64(*case.args[:3])
    if case.args[3] is not None:
        return None
    factor = ((got["mean"] - running_mean) / (values.mean(0) - running_mean)).median().item()
    return None if abs(factor - _factor(case)) < 1e-9 else _update(case, factor)


def _running_scales(case):
    running_mean, running_var, values = as_float64(*case.args[:3])
    spread = torch.stack([running_mean.abs(), values.mean(0).abs(), values.std(0)]).amax(0)
    return {"mean": spread, "var": torch.maximum(running_var, values.var(0))}


RUNNING = Exercise(
    "check_running_update", ("running_mean", "running_var", "batch", "momentum", "step"), ("mean", "var"),
    _running_reference, _running_scales,
    mistakes=(
        Mistake("the update the wrong way round (the Keras convention)",
                "PyTorch's momentum weighs the new batch: running = (1 − momentum) · running + momentum · batch.",
                lambda case, got: None if case.args[3] is None else _update(case, 1 - case.args[3])),
        Mistake("the biased variance in running_var",
                "running_var stores the unbiased batch variance (divided by N − 1), while training mode "
                "normalizes with the biased one.",
                lambda case, got: {"var": _update(case, _factor(case), unbiased=False)["var"]}),
        Mistake("momentum=None with the factor 1/(step + 1)",
                "step is this batch's number counted from 1 (num_batches_tracked after the update): "
                "the factor is 1/step.",
                lambda case, got: None if case.args[3] is not None else _update(case, 1 / (case.args[4] + 1))),
        Mistake("momentum=None treated as a fixed factor",
                "momentum=None means the cumulative average: the factor is 1/step (1, 1/2, 1/3, ...), so every "
                "batch so far weighs the same, unlike any fixed factor.", _fixed_factor),
    ),
)


def check_running_update(fn, *, z=None, strict=False):
    """Check fn(running_mean, running_var, batch, momentum, step) -> (new_mean, new_var) against nn.BatchNorm1d."""
    return run_exercise(RUNNING, fn, cases.running_cases(z), strict=strict)
