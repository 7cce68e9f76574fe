"""The checks for (N, C, H, W) and (N, C, L) input: BatchNorm2d's training-mode forward pass and the running update
for 3-d and 4-d batches. Right answers pass however computed; each named mistake fails with its own name."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import exercises
from tests.support.exercise_answers import running_by_layer

CHANNELS = (0, 2, 3)


def bn2d_by_hand(x, gamma, beta, eps):
    mean = x.mean(dim=CHANNELS, keepdim=True)  # (1, C, 1, 1)
    var = x.var(dim=CHANNELS, unbiased=False, keepdim=True)
    return gamma[:, None, None] * (x - mean) / torch.sqrt(var + eps) + beta[:, None, None]


def bn2d_functional(x, gamma, beta, eps):
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def bn2d_by_layer(x, gamma, beta, eps):
    layer = nn.BatchNorm2d(x.shape[1], eps=eps, dtype=x.dtype)
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        return layer(x)


def bn2d_float64_reshaped(x, gamma, beta, eps):
    """Channels first, flattened, in float64, the scale folded before the shift."""
    n, c, h, w = x.shape
    columns = x.double().transpose(0, 1).reshape(c, -1)  # (C, N*H*W)
    centered = columns - columns.sum(1, keepdim=True) / columns.shape[1]
    scale = gamma.double()[:, None] * (centered.pow(2).mean(1, keepdim=True) + eps).rsqrt()
    out = centered * scale + beta.double()[:, None]
    return out.reshape(c, n, h, w).transpose(0, 1).to(x.dtype)


def running_nd(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    dims = [d for d in range(batch.dim()) if d != 1]
    return ((1 - factor) * running_mean + factor * batch.mean(dims),
            (1 - factor) * running_var + factor * batch.var(dims))


def running_nd_float64_flat(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    columns = batch.double().transpose(0, 1).reshape(batch.shape[1], -1)  # (C, N*L) or (C, N*H*W)
    mean = columns.mean(1)
    var = ((columns - mean[:, None]) ** 2).sum(1) / (columns.shape[1] - 1)
    return running_mean + factor * (mean.to(batch.dtype) - running_mean), running_var + factor * (
        var.to(batch.dtype) - running_var)


@pytest.mark.parametrize(("check", "fn"), [
    (exercises.check_batchnorm2d_train, bn2d_by_hand),
    (exercises.check_batchnorm2d_train, bn2d_functional),
    (exercises.check_batchnorm2d_train, bn2d_by_layer),
    (exercises.check_batchnorm2d_train, bn2d_float64_reshaped),
    (exercises.check_running_update_nd, running_nd),
    (exercises.check_running_update_nd, running_by_layer),
    (exercises.check_running_update_nd, running_nd_float64_flat),
], ids=lambda value: value.__name__)
def test_right_answers_pass(check, fn):
    result = check(fn)
    assert result.passed, result.message


def _bn2d(mean_var, *, eps_inside=True, gamma=True, beta=True, affine_shape=(-1, 1, 1), eps_value=None):
    def fn(x, g, b, eps):
        mean, var = mean_var(x)
        eps = eps if eps_value is None else eps_value
        scaled = (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
        return (g.reshape(affine_shape) if gamma else 1) * scaled + (b.reshape(affine_shape) if beta else 0)
    return fn


def _stats(dims, unbiased=False, keepdim=True):
    return lambda x: (x.mean(dims, keepdim=keepdim), x.var(dims, unbiased=unbiased, keepdim=keepdim))


BN2D_MISTAKES = [
    ("statistics over N only, per position (the (N, C) version unchanged)", _bn2d(_stats(0))),
    ("statistics per example, not per channel over the batch", _bn2d(_stats((2, 3)))),
    ("statistics per example, not per channel over the batch", _bn2d(_stats((1, 2, 3)))),
    ("statistics over (N, C), mixing the channels", _bn2d(_stats((0, 1)))),
    ("the unbiased variance in the normalization", _bn2d(_stats(CHANNELS, unbiased=True))),
    ("eps outside the square root", _bn2d(_stats(CHANNELS), eps_inside=False)),
    ("eps left out", _bn2d(_stats(CHANNELS), eps_value=0.0)),
    ("eps ignored (the function must use its eps argument)", _bn2d(_stats(CHANNELS), eps_value=1e-5)),
    ("eps ignored (the function must use its eps argument)", _bn2d(_stats(CHANNELS), eps_value=1e-3)),
    ("gamma and beta not broadcast per channel", _bn2d(_stats(CHANNELS), affine_shape=(-1,))),
    ("the statistics not broadcast per channel", _bn2d(_stats(CHANNELS, keepdim=False))),
    ("gamma left out", _bn2d(_stats(CHANNELS), gamma=False)),
    ("beta left out", _bn2d(_stats(CHANNELS), beta=False)),
    ("gamma and beta left out", _bn2d(_stats(CHANNELS), gamma=False, beta=False)),
    ("the variance as E[z²] − E[z]² (catastrophic cancellation)", _bn2d(
        lambda x: (x.mean(CHANNELS, keepdim=True),
                   (x * x).mean(CHANNELS, keepdim=True) - x.mean(CHANNELS, keepdim=True) ** 2))),
]


def _running_nd(mean_of, var_of, *, swap=False, factor_of=None):
    def fn(running_mean, running_var, batch, momentum, step):
        factor = (1.0 / step if momentum is None else momentum) if factor_of is None else factor_of(momentum, step)
        columns = batch.transpose(0, 1).reshape(batch.shape[1], -1).T  # (n, C)
        new = ((1 - factor) * running_mean + factor * mean_of(columns, running_mean, batch),
               (1 - factor) * running_var + factor * var_of(columns, running_mean, batch))
        return new[::-1] if swap else new
    return fn


def _mean(columns, running_mean, batch):
    return columns.mean(0)


def _var(columns, running_mean, batch):
    return columns.var(0)


RUNNING_ND_MISTAKES = [
    ("the count N − 1 instead of N · L − 1 (or N · H · W − 1)", _running_nd(
        _mean, lambda columns, rm, batch: ((columns - columns.mean(0)) ** 2).sum(0) / (batch.shape[0] - 1))),
    ("the biased variance in running_var", _running_nd(
        _mean, lambda columns, rm, batch: columns.var(0, unbiased=False))),
    ("n/(n − 1) applied twice or to the mean", _running_nd(
        _mean, lambda columns, rm, batch: columns.var(0) * len(columns) / (len(columns) - 1))),
    ("the variance taken around the running mean", _running_nd(
        _mean, lambda columns, rm, batch: ((columns - rm) ** 2).sum(0) / (len(columns) - 1))),
    ("mean and variance swapped", _running_nd(_mean, _var, swap=True)),
    ("the update the wrong way round (the Keras convention)", _running_nd(
        _mean, _var, factor_of=lambda momentum, step: 1.0 / step if momentum is None else 1 - momentum)),
    ("momentum=None treated as a fixed factor", _running_nd(
        _mean, _var, factor_of=lambda momentum, step: 0.1 if momentum is None else momentum)),
]


@pytest.mark.parametrize(("check", "name", "fn"),
                         [(exercises.check_batchnorm2d_train, *row) for row in BN2D_MISTAKES]
                         + [(exercises.check_running_update_nd, *row) for row in RUNNING_ND_MISTAKES],
                         ids=[name for name, _ in BN2D_MISTAKES + RUNNING_ND_MISTAKES])
def test_each_named_mistake_fails_with_its_own_name(check, name, fn):
    result = check(fn)
    assert not result.passed
    assert result.mistake == name, result.message
    assert f"likely mistake: {name}." in result.message


def test_a_2d_check_takes_the_callers_activations():
    z = torch.randn(8, 3, 5, 5) * 2 + 1
    assert exercises.check_batchnorm2d_train(bn2d_by_hand, z=z).passed
    assert exercises.check_running_update_nd(running_nd, z=z[:, :, 0]).passed
    with pytest.raises(ValueError, match=r"z must be a floating-point tensor of shape \(N, C, H, W\)"):
        exercises.check_batchnorm2d_train(bn2d_by_hand, z=torch.randn(8, 3))
