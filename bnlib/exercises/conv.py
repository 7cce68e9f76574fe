"""Notebook 02's exercise 1: BatchNorm's training-mode forward pass for convolutional input, as `nn.BatchNorm2d`
computes it: x of shape (N, C, H, W), one mean and one variance per channel over (N, H, W)."""

from functools import partial

import torch.nn.functional as F

from bnlib.exercises import cases
from bnlib.exercises.base import TIME_LIMIT, Exercise, Mistake
from bnlib.exercises.harness import run_exercise
from bnlib.exercises.mistakes import affine_left_out, as_float64, cancellation, eps_ignored, normalize

CHANNEL = (0, 2, 3)  # every dimension but C


def channel(values):
    """(C,) -> (1, C, 1, 1), so that it lines up with x's channels."""
    return values.reshape(1, -1, 1, 1)


def _reference(case):
    x, gamma, beta, eps = case.args
    return {"output": F.batch_norm(*as_float64(x), None, None, *as_float64(gamma, beta), training=True, eps=eps)}


def _scales(case):
    return {"output": channel(case.args[1].double().abs())}


def _mistake(formula):
    """A Mistake formula from formula(x, gamma, beta, eps, mean, var), gamma, beta and the statistics (1, C, 1, 1)."""
    def predict(case, got):
        x, gamma, beta = as_float64(*case.args[:3])
        mean, var = x.mean(CHANNEL, keepdim=True), x.var(CHANNEL, unbiased=False, keepdim=True)
        return {"output": formula(x, channel(gamma), channel(beta), case.args[3], mean, var)}
    return predict


def _over(dims):
    """The normalization with statistics over `dims` instead of (N, H, W)."""
    return _mistake(lambda x, g, b, eps, mean, var: normalize(
        x, x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True), g, b, eps))


def _along_w(case, got):
    """gamma and beta (C,) broadcast against x's last dimension W: possible only where W = C."""
    x, gamma, beta = as_float64(*case.args[:3])
    if x.shape[-1] != x.shape[1]:
        return None
    mean, var = x.mean(CHANNEL, keepdim=True), x.var(CHANNEL, unbiased=False, keepdim=True)
    return {"output": normalize(x, mean, var, gamma, beta, case.args[3])}


def _statistics_along_w(case, got):
    """The statistics (C,) without keepdim, so that they line up with W: possible only where W = C."""
    x, gamma, beta = as_float64(*case.args[:3])
    if x.shape[-1] != x.shape[1]:
        return None
    return {"output": normalize(x, x.mean(CHANNEL), x.var(CHANNEL, unbiased=False), channel(gamma),
                                channel(beta), case.args[3])}


PER_EXAMPLE = "statistics per example, not per channel over the batch"
PER_EXAMPLE_HINT = "Each channel gets one mean and one variance over the whole batch and every position: (N, H, W)."
TRAIN2D = Exercise(
    "check_batchnorm2d_train", ("x", "gamma", "beta", "eps"), ("output",), _reference, _scales,
    mistakes=(
        Mistake("statistics over N only, per position (the (N, C) version unchanged)",
                "BatchNorm2d shares one mean and one variance across H and W too: reduce over (N, H, W).",
                _over((0,))),
        Mistake(PER_EXAMPLE, PER_EXAMPLE_HINT, _over((2, 3))),
        Mistake(PER_EXAMPLE, PER_EXAMPLE_HINT, _over((1, 2, 3))),
        Mistake("statistics over (N, C), mixing the channels",
                "Each channel has its own statistics; reduce over (N, H, W), never over C.", _over((0, 1))),
        Mistake("the unbiased variance in the normalization",
                "Training mode divides by the count of values, N · H · W (the biased variance), not by that count "
                "minus 1.", _mistake(lambda x, g, b, eps, mean, var: normalize(
                    x, mean, x.var(CHANNEL, keepdim=True), g, b, eps))),
        Mistake("eps outside the square root", "eps belongs inside the square root, with the variance.",
                _mistake(lambda x, g, b, eps, mean, var: g * (x - mean) / (var.sqrt() + eps) + b)),
        Mistake("eps left out", "Add eps to the variance before the square root.",
                _mistake(lambda x, g, b, eps, mean, var: normalize(x, mean, var, g, b, 0.0))),
        eps_ignored(),
        Mistake("gamma and beta not broadcast per channel",
                "gamma and beta have shape (C,): reshape them to (1, C, 1, 1) (or index with [:, None, None]) so "
                "that they line up with the channels, not with W.", _along_w),
        Mistake("the statistics not broadcast per channel",
                "A mean and variance of shape (C,) line up with W, not with the channels: keep the reduced "
                "dimensions (keepdim=True) or reshape to (1, C, 1, 1).", _statistics_along_w),
        *affine_left_out(lambda step: _mistake(lambda x, g, b, eps, mean, var: step(x, mean, var, g, b, eps))),
        cancellation(),
    ),
    with_eps=partial(cases.with_eps, index=3),
)


def check_batchnorm2d_train(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(x, gamma, beta, eps) -> (N, C, H, W) against `F.batch_norm` (as nn.BatchNorm2d) in training mode;
    z= adds the caller's (N, C, H, W) activations as a case."""
    return run_exercise(TRAIN2D, fn, cases.train2d_cases(z), strict=strict, time_limit_s=time_limit)


