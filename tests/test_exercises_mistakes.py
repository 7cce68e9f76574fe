"""Each named mistake of the (N, C) checks, written as a student would, fails with its own name and hint."""

import pytest
import torch
from torch import nn

from bnlib import exercises
from tests.support.exercise_answers import backward_reference, train_reference

# --- the named mistakes, each written as a student would ---


def _train(statistics=None, *, eps_inside=True, gamma=True, beta=True):
    def fn(z, g, b, eps):
        mean, var = statistics(z) if statistics else (z.mean(0), z.var(0, unbiased=False))
        scaled = (z - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
        return (g if gamma else 1) * scaled + (b if beta else 0)
    return fn


TRAIN_MISTAKES = {
    "eps ignored (the function must use its eps argument)": lambda z, g, b, eps: train_reference(z, g, b, 1e-5),
    "the unbiased variance in the normalization": _train(lambda z: (z.mean(0), z.var(0))),
    "eps outside the square root": _train(eps_inside=False),
    "eps left out": lambda z, g, b, eps: g * (z - z.mean(0)) / z.std(0, unbiased=False) + b,
    "statistics over the wrong dimension": _train(lambda z: (z.mean(1, keepdim=True),
                                                             z.var(1, unbiased=False, keepdim=True))),
    "gamma left out": _train(gamma=False),
    "beta left out": _train(beta=False),
    "gamma and beta left out": _train(gamma=False, beta=False),
    "the variance as E[z²] − E[z]² (catastrophic cancellation)": _train(
        lambda z: (z.mean(0), (z * z).mean(0) - z.mean(0) ** 2)),
}


def _backward_constant_statistics(dout, z, gamma, eps):
    inv_std = 1.0 / torch.sqrt(z.var(0, unbiased=False) + eps)
    return dout * gamma * inv_std, (dout * (z - z.mean(0)) * inv_std).sum(0), dout.sum(0)


def _backward_changed(change):
    def fn(dout, z, gamma, eps):
        return change(*backward_reference(dout, z, gamma, eps), z, gamma)
    return fn


def _backward_with_variance(variance):
    def fn(dout, z, gamma, eps):
        n, mean, var = z.shape[0], z.mean(0), variance(z)
        inv_std = 1.0 / torch.sqrt(var + eps)
        z_hat = (z - mean) * inv_std
        dz_hat = dout * gamma
        dz = inv_std / n * (n * dz_hat - dz_hat.sum(0) - z_hat * (dz_hat * z_hat).sum(0))
        return dz, (dout * z_hat).sum(0), dout.sum(0)
    return fn


def _backward_unbiased(dout, z, gamma, eps):
    z, gamma = z.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    (gamma * (z - z.mean(0)) / torch.sqrt(z.var(0) + eps) + beta).backward(dout)
    return z.grad, gamma.grad, beta.grad


def _backward_eps_outside(dout, z, gamma, eps):
    z, gamma = z.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    (gamma * (z - z.mean(0)) / (z.std(0, unbiased=False) + eps) + beta).backward(dout)
    return z.grad, gamma.grad, beta.grad


def _backward_dgamma_from(*, centered):
    def fn(dout, z, gamma, eps):
        dz, _, dbeta = backward_reference(dout, z, gamma, eps)
        return dz, (dout * (z - z.mean(0) if centered else z)).sum(0), dbeta
    return fn


def _backward_dz(drop):
    def fn(dout, z, gamma, eps):
        inv_std = 1.0 / torch.sqrt(z.var(0, unbiased=False) + eps)
        z_hat = (z - z.mean(0)) * inv_std
        mean_term = 0 if drop == "mean" else dout.mean(0)
        variance_term = 0 if drop == "variance" else z_hat * (dout * z_hat).mean(0)
        return gamma * inv_std * (dout - mean_term - variance_term), (dout * z_hat).sum(0), dout.sum(0)
    return fn


BACKWARD_MISTAKES = {
    "eps ignored (the function must use its eps argument)": lambda dout, z, g, eps: backward_reference(
        dout, z, g, 1e-5),
    "the mean term left out of dz": _backward_dz("mean"),
    "the variance term left out of dz": _backward_dz("variance"),
    "dgamma from z (or z − mean) instead of the normalized ẑ": _backward_dgamma_from(centered=False),
    "the batch mean and variance treated as constants": _backward_constant_statistics,
    "the unbiased variance in the normalization": _backward_unbiased,
    "eps outside the square root": _backward_eps_outside,
    "gamma left out of dz": _backward_changed(lambda dz, dgamma, dbeta, z, gamma: (dz / gamma, dgamma, dbeta)),
    "dgamma and dbeta averaged instead of summed over the batch": _backward_changed(
        lambda dz, dgamma, dbeta, z, gamma: (dz, dgamma / z.shape[0], dbeta / z.shape[0])),
    "the variance as E[z²] − E[z]² (catastrophic cancellation)": _backward_with_variance(
        lambda z: (z * z).mean(0) - z.mean(0) ** 2),
}


def _running(factor_of, *, unbiased=True):
    def fn(running_mean, running_var, batch, momentum, step):
        factor = factor_of(momentum, step)
        return ((1 - factor) * running_mean + factor * batch.mean(0),
                (1 - factor) * running_var + factor * batch.var(0, unbiased=unbiased))
    return fn


def _pytorch_factor(momentum, step):
    return 1.0 / step if momentum is None else momentum


def _running_statistics(mean_of, var_of, *, swap=False):
    def fn(running_mean, running_var, batch, momentum, step):
        factor = _pytorch_factor(momentum, step)
        new = ((1 - factor) * running_mean + factor * mean_of(batch, running_mean),
               (1 - factor) * running_var + factor * var_of(batch, running_mean))
        return new[::-1] if swap else new
    return fn


def _corrected(batch):
    return batch.shape[0] / (batch.shape[0] - 1)


RUNNING_MISTAKES = {
    "n/(n − 1) applied twice or to the mean": _running_statistics(
        lambda batch, rm: batch.mean(0), lambda batch, rm: batch.var(0) * _corrected(batch)),
    "the variance taken around the running mean": _running_statistics(
        lambda batch, rm: batch.mean(0), lambda batch, rm: ((batch - rm) ** 2).sum(0) / (batch.shape[0] - 1)),
    "mean and variance swapped": _running_statistics(
        lambda batch, rm: batch.mean(0), lambda batch, rm: batch.var(0), swap=True),
    "the update the wrong way round (the Keras convention)": _running(
        lambda momentum, step: 1.0 / step if momentum is None else 1 - momentum),
    "the biased variance in running_var": _running(_pytorch_factor, unbiased=False),
    "momentum=None treated as a fixed factor": _running(lambda momentum, step: 0.1 if momentum is None else momentum),
    "momentum=None with the factor 1/(step + 1)": _running(
        lambda momentum, step: 1.0 / (step + 1) if momentum is None else momentum),
}


def _eval(normalize):
    def fn(z, running_mean, running_var, gamma, beta, eps):
        return normalize(z, running_mean, running_var, gamma, beta, eps)
    return fn


EVAL_MISTAKES = {
    "eps ignored (the function must use its eps argument)": _eval(
        lambda z, m, v, g, b, eps: g * (z - m) / (v + 1e-5).sqrt() + b),
    "the running variance rescaled by (N − 1)/N": _eval(
        lambda z, m, v, g, b, eps: g * (z - m) / (v * (len(z) - 1) / len(z) + eps).sqrt() + b),
    "mean and variance swapped": _eval(lambda z, m, v, g, b, eps: g * (z - v) / (m + eps).sqrt() + b),
    "batch statistics used in eval mode": _eval(lambda z, m, v, g, b, eps: train_reference(z, g, b, eps)),
    "eps outside the square root": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v.sqrt() + eps) + b),
    "eps left out": _eval(lambda z, m, v, g, b, eps: g * (z - m) / v.sqrt() + b),
    "the variance used as a standard deviation": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v + eps) + b),
    "gamma left out": _eval(lambda z, m, v, g, b, eps: (z - m) / (v + eps).sqrt() + b),
    "beta left out": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v + eps).sqrt()),
    "gamma and beta left out": _eval(lambda z, m, v, g, b, eps: (z - m) / (v + eps).sqrt()),
}


def _fold(*, eps=True, bias=True, scale_bias=True, gamma=True, beta=True, bias_always=True, eps_value=None,
          divide=lambda var, eps: torch.sqrt(var + eps), gamma_in_bias=True):
    def fn(linear, bn):
        used = (bn.eps if eps else 0) if eps_value is None else eps_value
        scale = (bn.weight if gamma else 1) / divide(bn.running_var, used)
        has_bias = bias_always or linear.bias is not None
        folded = nn.Linear(linear.in_features, linear.out_features, bias=has_bias, dtype=linear.weight.dtype)
        with torch.no_grad():
            folded.weight.copy_(scale[:, None] * linear.weight)
            if has_bias:
                b = linear.bias if (bias and linear.bias is not None) else 0
                shift = scale if gamma_in_bias else scale / bn.weight
                folded.bias.copy_((shift if scale_bias else 1) * b - shift * bn.running_mean + (bn.bias if beta else 0))
        return folded
    return fn


FOLD_MISTAKES = {
    "eps ignored (the function must use bn.eps)": _fold(eps_value=1e-5),
    "sqrt(running_var) + eps": _fold(divide=lambda var, eps: var.sqrt() + eps),
    "running_var instead of its square root": _fold(divide=lambda var, eps: var + eps),
    "gamma applied only to the weight": _fold(gamma_in_bias=False),
    "the fold drops eps": _fold(eps=False),
    "the fold drops the Linear's bias": _fold(bias=False),
    "the Linear's bias not scaled": _fold(scale_bias=False),
    "no bias in the folded Linear": _fold(bias_always=False),
    "gamma left out": _fold(gamma=False),
    "beta left out": _fold(beta=False),
}

MISTAKES = [
    (check, name, fn)
    for check, table in [
        (exercises.check_batchnorm_train, TRAIN_MISTAKES),
        (exercises.check_batchnorm_backward, BACKWARD_MISTAKES),
        (exercises.check_running_update, RUNNING_MISTAKES),
        (exercises.check_batchnorm_eval, EVAL_MISTAKES),
        (exercises.check_fold, FOLD_MISTAKES),
    ]
    for name, fn in table.items()
] + [(exercises.check_batchnorm_backward, "dgamma from z (or z − mean) instead of the normalized ẑ",
      _backward_dgamma_from(centered=True)),
     (exercises.check_running_update, "n/(n − 1) applied twice or to the mean", _running_statistics(
         lambda batch, rm: batch.mean(0) * _corrected(batch), lambda batch, rm: batch.var(0))),
     (exercises.check_running_update, "the variance taken around the running mean", _running_statistics(
         lambda batch, rm: batch.mean(0), lambda batch, rm: ((batch - rm) ** 2).mean(0)))]


@pytest.mark.parametrize(("check", "name", "fn"), MISTAKES,
                         ids=[f"{check.__name__}: {name}" for check, name, _ in MISTAKES])
def test_each_named_mistake_fails_with_its_own_hint(check, name, fn):
    result = check(fn)
    assert not result.passed
    assert result.message.startswith("failed") and "largest scaled difference" in result.message, result.message
    assert result.mistake == name, result.message
    assert f"likely mistake: {name}." in result.message
