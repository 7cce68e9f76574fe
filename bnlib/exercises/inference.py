"""The inference exercises of notebook 05: BatchNorm's forward pass in eval mode, and folding it into the
Linear before it."""

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from bnlib.exercises import cases
from bnlib.exercises.base import TIME_LIMIT, BadOutput, Exercise, Mistake
from bnlib.exercises.harness import run_exercise
from bnlib.exercises.mistakes import affine_left_out, as_float64, column_rms, eps_ignored, normalize
from bnlib.models import linear_bias

# --- evaluation-mode forward: fn(z, running_mean, running_var, gamma, beta, eps) -> (N, C) ---

def _eval_reference(case):
    z, running_mean, running_var, gamma, beta, eps = case.args
    return {"output": F.batch_norm(*as_float64(z, running_mean, running_var, gamma, beta), training=False, eps=eps)}


def _eval_scales(case):
    z, running_mean, running_var, gamma, _ = as_float64(*case.args[:5])
    normalized = (z - running_mean) / torch.sqrt(running_var + case.args[5])
    return {"output": gamma.abs() * column_rms(normalized).clamp_min(1.0)}


def _eval_mistake(formula):
    """A Mistake formula from formula(z, running_mean, running_var, gamma, beta, eps) in float64."""
    def predict(case, got):
        output = formula(*as_float64(*case.args[:5]), case.args[5])
        return None if output is None else {"output": output}
    return predict


EVAL = Exercise(
    "check_batchnorm_eval", ("z", "running_mean", "running_var", "gamma", "beta", "eps"), ("output",),
    _eval_reference, _eval_scales,
    mistakes=(
        Mistake("batch statistics used in eval mode",
                "Eval mode normalizes with running_mean and running_var, so an example's output does not depend "
                "on the rest of its batch (and a batch of one works).",
                _eval_mistake(lambda z, m, v, g, b, eps: normalize(z, z.mean(0), z.var(0, unbiased=False), g, b, eps))),
        Mistake("batch statistics used in eval mode",
                "Eval mode normalizes with running_mean and running_var, not the batch's own statistics.",
                _eval_mistake(lambda z, m, v, g, b, eps: None if len(z) < 2 else normalize(
                    z, z.mean(0), z.var(0), g, b, eps))),
        Mistake("eps outside the square root", "eps belongs inside the square root, with running_var.",
                _eval_mistake(lambda z, m, v, g, b, eps: g * (z - m) / (v.sqrt() + eps) + b)),
        Mistake("eps left out", "Eval mode adds eps to running_var before the square root, as training mode does.",
                _eval_mistake(lambda z, m, v, g, b, eps: normalize(z, m, v, g, b, 0.0))),
        eps_ignored(),
        Mistake("the running variance rescaled by (N − 1)/N",
                "Eval mode uses running_var as stored; it does not convert it back to a biased variance.",
                _eval_mistake(lambda z, m, v, g, b, eps: normalize(z, m, v * (len(z) - 1) / len(z), g, b, eps))),
        Mistake("mean and variance swapped", "The two running statistics trade places in your code: check which "
                "one you subtract and which one you take the square root of.",
                _eval_mistake(lambda z, m, v, g, b, eps: normalize(z, v, m, g, b, eps))),
        Mistake("the variance used as a standard deviation", "Take the square root of running_var + eps.",
                _eval_mistake(lambda z, m, v, g, b, eps: g * (z - m) / (v + eps) + b)),
        *affine_left_out(lambda step: _eval_mistake(lambda z, m, v, g, b, eps: step(z, m, v, g, b, eps))),
    ),
    with_eps=partial(cases.with_eps, index=5),
)


def check_batchnorm_eval(fn, *, z=None, strict=False, time_limit=TIME_LIMIT):
    """Check fn(z, running_mean, running_var, gamma, beta, eps) -> (N, C) against `F.batch_norm` in eval mode."""
    return run_exercise(EVAL, fn, cases.eval_cases(z), strict=strict, time_limit_s=time_limit)


# --- folding: fn(linear, bn) -> one nn.Linear equal to linear followed by bn in eval mode ---

def _fold_pieces(case):
    """x @ W.T, the Linear's bias (0 without one), and the BatchNorm's buffers and parameters, in float64."""
    linear, norm = case.args
    x = case.data["x"].double()
    bias = linear_bias(linear).double()
    pieces = as_float64(linear.weight, norm.running_mean, norm.running_var, norm.weight, norm.bias)
    return x @ pieces[0].T, bias, *pieces[1:], norm.eps


def _fold_reference(case):
    linear, norm = (copy.deepcopy(layer).double() for layer in case.args)
    with torch.no_grad():
        return {"output": norm.eval()(linear(case.data["x"].double()))}


def _fold_scales(case):
    product, bias, mean, var, gamma, _, eps = _fold_pieces(case)
    return {"output": gamma.abs() * column_rms((product + bias - mean) / torch.sqrt(var + eps)).clamp_min(1.0)}


def _fold_evaluate(value, case):
    linear = case.args[0]
    if not isinstance(value, nn.Linear):
        raise BadOutput(f"returned {type(value).__name__}, expected an nn.Linear")
    if tuple(value.weight.shape) != tuple(linear.weight.shape):
        shape, expected = tuple(value.weight.shape), tuple(linear.weight.shape)
        raise BadOutput(f"the folded weight has shape {shape}, expected {expected}")
    with torch.no_grad():
        return {"output": value(case.data["x"].to(value.weight.dtype))}


def _fold_mistake(formula, needs_bias=None):
    """A Mistake formula from formula(xW, b, mean, var, gamma, beta, eps); needs_bias: only for that kind of Linear."""
    def predict(case, got):
        if needs_bias is not None and (case.args[0].bias is not None) != needs_bias:
            return None
        return {"output": formula(*_fold_pieces(case))}
    return predict


FOLD = Exercise(
    "check_fold", ("linear", "bn"), ("output",), _fold_reference, _fold_scales, evaluate=_fold_evaluate,
    mistakes=(
        Mistake("the fold drops eps", "The scale has eps inside the square root, with running_var.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: g * (xw + b - m) / v.sqrt() + beta)),
        eps_ignored("eps ignored (the function must use bn.eps)"),
        Mistake("sqrt(running_var) + eps", "eps belongs inside the square root, with running_var.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: g * (xw + b - m) / (v.sqrt() + eps) + beta)),
        Mistake("running_var instead of its square root",
                "BatchNorm divides by a standard deviation: take the square root of running_var + eps.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: g * (xw + b - m) / (v + eps) + beta)),
        Mistake("the fold drops the Linear's bias",
                "The Linear's bias b goes through BatchNorm like the rest of its output: the folded bias depends "
                "on b.", _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw, m, v, g, beta, eps), True)),
        Mistake("the Linear's bias not scaled",
                "BatchNorm scales the Linear's bias with the rest of its output: b − running_mean gets the same "
                "per-unit factor as the weight's rows.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw, m, v, g, beta, eps) + b, True)),
        Mistake("gamma applied only to the weight",
                "gamma scales BatchNorm's whole normalized output, so the folded bias carries it too.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw, 0.0, v, g, 0.0, eps)
                              + normalize(b, m, v, 1.0, beta, eps))),
        Mistake("no bias in the folded Linear",
                "Even when the Linear had no bias, the folded one needs one: BatchNorm's shift (from beta and the "
                "running mean) has to go somewhere.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw, 0.0, v, g, 0.0, eps), False)),
        Mistake("gamma left out", "Both the weight and the bias are multiplied by gamma.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw + b, m, v, 1.0, beta, eps))),
        Mistake("beta left out", "The folded bias must include beta.",
                _fold_mistake(lambda xw, b, m, v, g, beta, eps: normalize(xw + b, m, v, g, 0.0, eps))),
    ),
    with_eps=cases.fold_with_eps,
)


def check_fold(fn, *, strict=False, time_limit=TIME_LIMIT):
    """Check fn(linear, bn) -> nn.Linear equal to `linear` then `bn` in eval mode, with and without a Linear bias;
    both modules come in eval mode, so `torch.nn.utils.fusion.fuse_linear_bn_eval` passes as any correct fold."""
    return run_exercise(FOLD, fn, cases.fold_cases(), strict=strict, time_limit_s=time_limit)
