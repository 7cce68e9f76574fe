"""The exercise checks: right answers pass (however computed), each named mistake fails with its own hint,
the stub is "not attempted", an exception is one line, and the caller's tensors are never changed."""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import exercises
from bnlib.exercises.harness import TOLERANCE, ExerciseFailed

# --- students' functions: the reference solutions and other right answers ---


def train_reference(z, gamma, beta, eps):
    mean = z.mean(dim=0)  # (N, C) -> (C,)
    var = z.var(dim=0, unbiased=False)
    return gamma * (z - mean) / torch.sqrt(var + eps) + beta


def train_functional(z, gamma, beta, eps):
    return F.batch_norm(z, None, None, gamma, beta, training=True, eps=eps)


def train_float64_reordered(z, gamma, beta, eps):
    z64 = z.double()
    centered = z64 - z64.sum(0) / z64.shape[0]
    scale = gamma.double() * torch.rsqrt((centered * centered).mean(0) + eps)
    return (centered * scale + beta.double()).to(z.dtype)


def train_in_place(z, gamma, beta, eps):
    mean, var = z.mean(0), z.var(0, unbiased=False)
    return z.sub_(mean).div_(torch.sqrt(var + eps)).mul_(gamma).add_(beta)


def backward_reference(dout, z, gamma, eps):
    n = z.shape[0]
    mean, var = z.mean(0), z.var(0, unbiased=False)
    inv_std = 1.0 / torch.sqrt(var + eps)
    z_hat = (z - mean) * inv_std
    dgamma, dbeta = (dout * z_hat).sum(0), dout.sum(0)
    dz_hat = dout * gamma
    dz = inv_std / n * (n * dz_hat - dz_hat.sum(0) - z_hat * (dz_hat * z_hat).sum(0))
    return dz, dgamma, dbeta


def backward_autograd(dout, z, gamma, eps):
    z, gamma = z.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    F.batch_norm(z, None, None, gamma, beta, training=True, eps=eps).backward(dout)
    return z.grad, gamma.grad, beta.grad


def running_reference(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    new_mean = (1 - factor) * running_mean + factor * batch.mean(dim=0)
    new_var = (1 - factor) * running_var + factor * batch.var(dim=0, unbiased=True)
    return new_mean, new_var


def running_in_place(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    running_mean.mul_(1 - factor).add_(factor * batch.mean(0))
    running_var.mul_(1 - factor).add_(factor * batch.var(0))
    return running_mean, running_var


def eval_reference(z, running_mean, running_var, gamma, beta, eps):
    return gamma * (z - running_mean) / torch.sqrt(running_var + eps) + beta


def eval_functional(z, running_mean, running_var, gamma, beta, eps):
    return F.batch_norm(z.double(), running_mean.double(), running_var.double(), gamma.double(), beta.double(),
                        training=False, eps=eps)


def fold_reference(linear, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
    folded = nn.Linear(linear.in_features, linear.out_features, dtype=linear.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(scale[:, None] * linear.weight)
        folded.bias.copy_(scale * (bias - bn.running_mean) + bn.bias)
    return folded


def fold_in_place(linear, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        shift = bn.bias - scale * bn.running_mean + (scale * linear.bias if linear.bias is not None else 0)
        linear.weight.mul_(scale[:, None])
        if linear.bias is None:
            linear.bias = nn.Parameter(shift)
        else:
            linear.bias.copy_(shift)
    return linear


RIGHT_ANSWERS = [
    (exercises.check_batchnorm_train, train_reference),
    (exercises.check_batchnorm_train, train_functional),
    (exercises.check_batchnorm_train, train_float64_reordered),
    (exercises.check_batchnorm_backward, backward_reference),
    (exercises.check_batchnorm_backward, backward_autograd),
    (exercises.check_running_update, running_reference),
    (exercises.check_batchnorm_eval, eval_reference),
    (exercises.check_batchnorm_eval, eval_functional),
    (exercises.check_fold, fold_reference),
]


@pytest.mark.parametrize(("check", "fn"), RIGHT_ANSWERS, ids=lambda value: value.__name__)
def test_right_answers_pass(check, fn):
    result = check(fn)
    assert result.passed, result.message
    assert result.message.startswith("passed") and repr(result) == result.message and bool(result)
    assert result.mistake is None


@pytest.mark.parametrize(("check", "fn", "argument"), [
    (exercises.check_batchnorm_train, train_in_place, "z"),
    (exercises.check_running_update, running_in_place, "running_mean"),
    (exercises.check_fold, fold_in_place, "linear"),
], ids=["train", "running", "fold"])
def test_a_right_answer_computed_in_place_passes_and_the_change_is_named(check, fn, argument):
    result = check(fn)
    assert result.passed, result.message
    assert f"changed its argument {argument!r} in place" in result.message


# --- the named mistakes, each written as a student would ---


def _train(statistics=None, *, eps_inside=True, gamma=True, beta=True):
    def fn(z, g, b, eps):
        mean, var = statistics(z) if statistics else (z.mean(0), z.var(0, unbiased=False))
        scaled = (z - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
        return (g if gamma else 1) * scaled + (b if beta else 0)
    return fn


TRAIN_MISTAKES = {
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


BACKWARD_MISTAKES = {
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


RUNNING_MISTAKES = {
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
    "batch statistics used in eval mode": _eval(lambda z, m, v, g, b, eps: train_reference(z, g, b, eps)),
    "eps outside the square root": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v.sqrt() + eps) + b),
    "eps left out": _eval(lambda z, m, v, g, b, eps: g * (z - m) / v.sqrt() + b),
    "the variance used as a standard deviation": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v + eps) + b),
    "gamma left out": _eval(lambda z, m, v, g, b, eps: (z - m) / (v + eps).sqrt() + b),
    "beta left out": _eval(lambda z, m, v, g, b, eps: g * (z - m) / (v + eps).sqrt()),
    "gamma and beta left out": _eval(lambda z, m, v, g, b, eps: (z - m) / (v + eps).sqrt()),
}


def _fold(*, eps=True, bias=True, scale_bias=True, gamma=True, beta=True, bias_always=True):
    def fn(linear, bn):
        scale = (bn.weight if gamma else 1) / torch.sqrt(bn.running_var + (bn.eps if eps else 0))
        has_bias = bias_always or linear.bias is not None
        folded = nn.Linear(linear.in_features, linear.out_features, bias=has_bias, dtype=linear.weight.dtype)
        with torch.no_grad():
            folded.weight.copy_(scale[:, None] * linear.weight)
            if has_bias:
                b = linear.bias if (bias and linear.bias is not None) else 0
                folded.bias.copy_((scale if scale_bias else 1) * b - scale * bn.running_mean + (bn.bias if beta else 0))
        return folded
    return fn


FOLD_MISTAKES = {
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
]


@pytest.mark.parametrize(("check", "name", "fn"), MISTAKES,
                         ids=[f"{check.__name__}: {name}" for check, name, _ in MISTAKES])
def test_each_named_mistake_fails_with_its_own_hint(check, name, fn):
    result = check(fn)
    assert not result.passed
    assert result.message.startswith("failed") and "largest scaled difference" in result.message, result.message
    assert result.mistake == name, result.message
    assert f"likely mistake: {name}." in result.message


# --- stubs, exceptions, strict mode, the caller's tensors ---

CHECKS = [exercises.check_batchnorm_train, exercises.check_batchnorm_backward, exercises.check_running_update,
          exercises.check_batchnorm_eval, exercises.check_fold]


def stub(*args):
    raise NotImplementedError("your code here")


def broken(*args):
    """A shape error in the student's own line."""
    return args[0].reshape(-1) @ torch.ones(3)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_stub_is_not_attempted(check):
    result = check(stub)
    assert result.status == "not attempted" and not result.passed
    assert result.message.startswith("not attempted") and "\n" not in result.message
    with pytest.raises(ExerciseFailed, match="not attempted"):
        check(stub, strict=True)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_an_exception_is_one_line_naming_the_students_line(check):
    result = check(broken)
    assert result.status == "failed"
    line = result.message.splitlines()[1]
    assert re.match(r"your function raised (RuntimeError|AttributeError): ", line.strip()), line
    assert "`return args[0].reshape(-1) @ torch.ones(3)`" in line
    assert "Traceback" not in result.message and len(result.message.splitlines()) <= 3
    with pytest.raises(ExerciseFailed, match="your function raised") as raised:
        check(broken, strict=True)
    assert isinstance(raised.value.__cause__, (RuntimeError, AttributeError))


def test_a_wrong_return_type_is_named():
    result = exercises.check_batchnorm_backward(lambda dout, z, gamma, eps: dout)
    assert "expected a tuple (dz, dgamma, dbeta)" in result.message
    result = exercises.check_fold(lambda linear, bn: nn.Sequential(linear, bn))
    assert "returned Sequential, expected an nn.Linear" in result.message


def test_a_nan_fails():
    result = exercises.check_batchnorm_train(lambda z, gamma, beta, eps: torch.full_like(z, float("nan")))
    assert not result.passed and "got nan" in result.message


def test_real_activations_are_an_extra_case_and_stay_unchanged():
    z = torch.randn(256, 75) * 3 + 1
    before = z.clone()
    for check in (exercises.check_batchnorm_train, exercises.check_batchnorm_backward,
                  exercises.check_running_update, exercises.check_batchnorm_eval):
        fn = {exercises.check_batchnorm_train: train_in_place, exercises.check_batchnorm_backward: backward_reference,
              exercises.check_running_update: running_in_place, exercises.check_batchnorm_eval: eval_reference}[check]
        result = check(fn, z=z)
        assert result.passed, result.message
    assert torch.equal(z, before)
    def wrong_on_large_batches(z, gamma, beta, eps):
        return train_reference(z, gamma, beta, eps) + 0.1 * gamma * (z.shape[0] > 100)
    wrong = exercises.check_batchnorm_train(wrong_on_large_batches, z=z)
    assert "your model's activations" in wrong.message.splitlines()[0]


def test_z_must_be_a_batch():
    with pytest.raises(ValueError, match="z must be a floating-point tensor"):
        exercises.check_batchnorm_train(train_reference, z=torch.randn(5))
    with pytest.raises(TypeError, match="fn must be a function"):
        exercises.check_batchnorm_train("train_reference")


def test_scaled_error_rule_accepts_float32_rounding_and_rejects_just_beyond():
    """A float32 answer passes; the same answer off by 2 x TOLERANCE x |gamma| in one entry fails there."""
    def nudged(z, gamma, beta, eps):
        out = train_reference(z, gamma, beta, eps)
        out[0, 0] += 2 * TOLERANCE * gamma[0].abs()
        return out
    assert exercises.check_batchnorm_train(train_reference).passed
    result = exercises.check_batchnorm_train(nudged)
    assert "case 1 of" in result.message and "output[0, 0]" in result.message and result.mistake is None


def test_a_check_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check_fold(fold_reference)
    assert torch.equal(torch.rand(3), expected)
