"""The (N, C) exercise checks accept every right answer, however computed: by hand, through PyTorch, in float64,
in place, in any order of operations. Mistakes: test_exercises_mistakes; machinery: test_exercises_machinery."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_linear_bn_eval

from bnlib import exercises
from tests.support.exercise_answers import backward_reference, fold_reference, running_by_layer, train_reference

# --- students' functions: the reference solutions and other right answers ---


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


def backward_float64_by_terms(dout, z, gamma, eps):
    """The same gradient through the chain rule term by term, in float64, in another order."""
    dout64, z64, gamma64 = dout.double(), z.double(), gamma.double()
    n, centered = z64.shape[0], z64 - z64.mean(0)
    var = centered.pow(2).sum(0) / n
    inv_std = (var + eps).rsqrt()
    dz_hat = dout64 * gamma64
    dvar = (dz_hat * centered).sum(0) * -0.5 * inv_std**3
    dmean = -(dz_hat * inv_std).sum(0) + dvar * (-2 * centered).mean(0)
    dz = dz_hat * inv_std + dvar * 2 * centered / n + dmean / n
    return dz.float() if z.dtype == torch.float32 else dz, (dout64 * centered * inv_std).sum(0).to(z.dtype), \
        dout.sum(0)


def running_float64_other_order(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    b = batch.double()
    n, mean = b.shape[0], b.mean(0)
    var = ((b - mean) ** 2).sum(0) / (n - 1)
    return (running_mean + factor * (mean - running_mean)).to(batch.dtype), running_var + factor * (var - running_var)


def eval_as_affine(z, running_mean, running_var, gamma, beta, eps):
    scale = gamma * torch.rsqrt(running_var + eps)
    return z * scale + (beta - running_mean * scale)


def fold_by_pytorch(linear, bn):
    return fuse_linear_bn_eval(linear, bn)


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
    (exercises.check_batchnorm_backward, backward_float64_by_terms),
    (exercises.check_running_update, running_by_layer),
    (exercises.check_running_update, running_float64_other_order),
    (exercises.check_batchnorm_eval, eval_as_affine),
    (exercises.check_fold, fold_by_pytorch),
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
