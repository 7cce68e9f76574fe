"""The training-time exercises on (N, C) input: BatchNorm's forward pass in training mode and its backward pass
(notebook 02). The running update is in `running`, the (N, C, H, W) forward pass in `conv`."""

from functools import partial

import torch
import torch.nn.functional as F

from bnlib.exercises import cases
from bnlib.exercises.base import TIME_LIMIT, Exercise, Mistake
from bnlib.exercises.harness import run_exercise
from bnlib.exercises.mistakes import affine_left_out, as_float64, cancellation, column_rms, eps_ignored, normalize

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
        Mistake("eps outside the square root", "eps belongs inside the square root, with the variance.",
                _train_mistake(lambda z, g, b, eps, mean, var: g * (z - mean) / (var.sqrt() + eps) + b)),
        Mistake("eps left out", "Add eps to the variance before the square root: it keeps a unit whose batch "
                "variance is about 0 from blowing up.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(z, mean, var, g, b, 0.0))),
        eps_ignored(),
        Mistake("statistics over the wrong dimension",
                "z is (N, C): each unit (column) gets its own mean and variance over the batch, dim=0.",
                _train_mistake(lambda z, g, b, eps, mean, var: normalize(
                    z, z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True), g, b, eps))),
        *affine_left_out(lambda step: _train_mistake(lambda z, g, b, eps, mean, var: step(z, mean, var, g, b, eps))),
        cancellation(),
    ),
    with_eps=partial(cases.with_eps, index=3),
)


def check_batchnorm_train(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(z, gamma, beta, eps) -> (N, C) against `F.batch_norm` in training mode; a CheckResult."""
    return run_exercise(TRAIN, fn, cases.train_cases(z), strict=strict, time_limit_s=time_limit)


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


def _pieces(case):
    """dout, z − mean, the normalized ẑ, gamma / sqrt(var + eps), in float64."""
    dout, z, gamma = as_float64(*case.args[:3])
    centered = z - z.mean(0)
    inv_std = 1 / torch.sqrt(centered.pow(2).mean(0) + case.args[3])
    return dout, centered, centered * inv_std, gamma * inv_std


def _dz_without(term):
    """dz with the mean term or the variance term left out (the rest as in PyTorch's gradient)."""
    def predict(case, got):
        dout, _, z_hat, factor = _pieces(case)
        mean_term = dout.mean(0) if term != "mean" else 0.0
        variance_term = z_hat * (dout * z_hat).mean(0) if term != "variance" else 0.0
        return {"dz": factor * (dout - mean_term - variance_term)}
    return predict


def _dgamma_from(which):
    def predict(case, got):
        dout, centered, _, _ = _pieces(case)
        return {"dgamma": (dout * (centered if which == "centered" else case.args[1].double())).sum(0)}
    return predict


DGAMMA = "dgamma from z (or z − mean) instead of the normalized ẑ"
DGAMMA_HINT = "gamma multiplies the normalized ẑ in the forward pass, so dgamma pairs dout with ẑ, not with z."
BACKWARD = Exercise(
    "check_batchnorm_backward (reference: PyTorch's autograd through F.batch_norm)", ("dout", "z", "gamma", "eps"),
    ("dz", "dgamma", "dbeta"), lambda case: _gradients(_reference_forward, case), _backward_scales,
    mistakes=(
        Mistake("the batch mean and variance treated as constants",
                "Both depend on every z in the batch: dz needs a term through the batch mean and a term through "
                "the batch variance, not only dout · gamma / sqrt(var + eps).",
                lambda case, got: _gradients(lambda z, g, b, eps: normalize(
                    z, z.mean(0).detach(), z.var(0, unbiased=False).detach(), g, b, eps), case)),
        Mistake("the mean term left out of dz",
                "Every z moves the batch mean: the missing term is the batch mean of dout, subtracted from dout "
                "before the factor gamma / sqrt(var + eps).", _dz_without("mean")),
        Mistake("the variance term left out of dz",
                "Every z moves the batch variance too: the missing term is proportional to ẑ, the normalized z.",
                _dz_without("variance")),
        Mistake(DGAMMA, DGAMMA_HINT, _dgamma_from("z")),
        Mistake(DGAMMA, DGAMMA_HINT, _dgamma_from("centered")),
        Mistake("the unbiased variance in the normalization",
                "Training mode divides by N (the biased variance), in the backward pass too.",
                lambda case, got: _gradients(lambda z, g, b, eps: normalize(z, z.mean(0), z.var(0), g, b, eps), case)),
        Mistake("eps outside the square root", "The forward pass adds eps inside the square root.",
                lambda case, got: _gradients(lambda z, g, b, eps: g * (z - z.mean(0)) / (
                    z.var(0, unbiased=False).sqrt() + eps) + b, case)),
        eps_ignored(),
        Mistake("gamma left out of dz", "The output is gamma · ẑ + beta, so dz carries the factor gamma.",
                _changed_reference(lambda grads, case: {"dz": grads["dz"] / case.args[2].double()})),
        Mistake("dgamma and dbeta averaged instead of summed over the batch",
                "Every example contributes to gamma and beta: sum over dim=0, do not average.",
                _changed_reference(lambda grads, case: {name: grads[name] / case.args[1].shape[0]
                                                        for name in ("dgamma", "dbeta")})),
        cancellation(),
    ),
    with_eps=partial(cases.with_eps, index=3),
)


def check_batchnorm_backward(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(dout, z, gamma, eps) -> (dz, dgamma, dbeta) against autograd through `F.batch_norm`: autograd is
    the reference, while the exercise asks for the gradient derived by hand."""
    return run_exercise(BACKWARD, fn, cases.backward_cases(z), strict=strict, time_limit_s=time_limit)
