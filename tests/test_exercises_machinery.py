"""The checks' machinery: an exception in one line, the returned type, dtype and length, eps varied in every check,
hints that name a term but never the whole formula, and the caller's tensors and random state left alone.
Stubs and the time limit: test_exercises_stubs."""

import re

import pytest
import torch
from torch import nn

from bnlib import exercises
from bnlib.exercises import cases, conv, inference, running, training
from bnlib.exercises.base import TOLERANCE, ExerciseFailed
from tests.support.exercise_answers import backward_reference, fold_reference, train_reference


def running_reference(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    new_mean = (1 - factor) * running_mean + factor * batch.mean(dim=0)
    new_var = (1 - factor) * running_var + factor * batch.var(dim=0, unbiased=True)
    return new_mean, new_var


def eval_reference(z, running_mean, running_var, gamma, beta, eps):
    return gamma * (z - running_mean) / torch.sqrt(running_var + eps) + beta


def train_in_place(z, gamma, beta, eps):
    mean, var = z.mean(0), z.var(0, unbiased=False)
    return z.sub_(mean).div_(torch.sqrt(var + eps)).mul_(gamma).add_(beta)


def running_in_place(running_mean, running_var, batch, momentum, step):
    factor = 1.0 / step if momentum is None else momentum
    running_mean.mul_(1 - factor).add_(factor * batch.mean(0))
    running_var.mul_(1 - factor).add_(factor * batch.var(0))
    return running_mean, running_var


# --- stubs, exceptions, strict mode, the caller's tensors ---

CHECKS = [exercises.check_batchnorm_train, exercises.check_batchnorm_backward, exercises.check_running_update,
          exercises.check_batchnorm_eval, exercises.check_fold, exercises.check_batchnorm2d_train,
          exercises.check_running_update_nd]


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


# --- the returned dtype and length ---

def test_a_lower_precision_or_non_float_result_names_its_dtype():
    result = exercises.check_batchnorm_train(lambda z, gamma, beta, eps: train_reference(z, gamma, beta, eps).half())
    assert "returned float16 for float32 input" in result.message
    result = exercises.check_batchnorm_train(lambda z, gamma, beta, eps: train_reference(z, gamma, beta, eps).long())
    assert "returned int64 for float32 input" in result.message
    result = exercises.check_batchnorm_backward(
        lambda dout, z, gamma, eps: tuple(part.bfloat16() for part in backward_reference(dout, z, gamma, eps)))
    assert "dz is bfloat16 for float32 input" in result.message
    result = exercises.check_fold(lambda linear, bn: fold_reference(linear, bn).half())
    assert "returned float16 for float32 input" in result.message


def test_a_tuple_of_the_wrong_length_says_its_length():
    result = exercises.check_batchnorm_backward(lambda dout, z, gamma, eps: backward_reference(dout, z, gamma, eps)[:2])
    assert "returned a tuple of length 2, expected a tuple of length 3 (dz, dgamma, dbeta)" in result.message
    result = exercises.check_running_update_nd(lambda *args: (args[0], args[1], args[0]))
    assert "returned a tuple of length 3, expected a tuple of length 2 (mean, var)" in result.message


# --- eps varies in every check that has one, and a hard-coded eps is named ---

EPS_CASES = {training.TRAIN: cases.train_cases(), training.BACKWARD: cases.backward_cases(),
             inference.EVAL: cases.eval_cases(), conv.TRAIN2D: cases.train2d_cases()}


def test_every_check_with_an_eps_varies_it():
    for exercise, generated in EPS_CASES.items():
        assert {case.args[-1] for case in generated} >= {1e-5, 1e-3, 0.1}, exercise.title
    assert {case.args[1].eps for case in cases.fold_cases()} >= {1e-5, 1e-3, 0.1}


def hard_coded(eps_value):
    return {
        exercises.check_batchnorm_train: lambda z, g, b, eps: train_reference(z, g, b, eps_value),
        exercises.check_batchnorm_backward: lambda dout, z, g, eps: backward_reference(dout, z, g, eps_value),
        exercises.check_batchnorm_eval: lambda z, m, v, g, b, eps: eval_reference(z, m, v, g, b, eps_value),
        exercises.check_batchnorm2d_train: lambda x, g, b, eps: train_reference(
            x.transpose(1, 3).reshape(-1, x.shape[1]), g, b, eps_value).reshape(
            x.transpose(1, 3).shape).transpose(1, 3),
        exercises.check_fold: lambda linear, bn: fold_reference(linear, _with_eps(bn, eps_value)),
    }


def _with_eps(bn, eps):
    bn.eps = eps
    return bn


@pytest.mark.parametrize("eps_value", [1e-5, 1e-3, 0.1])
def test_a_function_that_ignores_eps_fails_every_check_with_an_eps(eps_value):
    for check, fn in hard_coded(eps_value).items():
        result = check(fn)
        assert not result.passed, check.__name__
        assert result.mistake is not None and result.mistake.startswith("eps ignored (the function must use"), \
            result.message


# --- the hints name the missing term, never the whole answer ---

def test_no_hint_gives_the_whole_formula_and_the_backward_check_names_autograd():
    exercises_ = (training.TRAIN, training.BACKWARD, running.RUNNING, running.RUNNING_ND, inference.EVAL,
                  inference.FOLD, conv.TRAIN2D)
    for exercise in exercises_:
        for mistake in exercise.mistakes:
            assert not re.search(r"\b(dz|dgamma|bias|running|running_mean|running_var|new \w+)\s*=", mistake.hint), \
                mistake.hint
            assert "(1 − momentum) ·" not in mistake.hint and "dout − mean(dout)" not in mistake.hint
    assert "autograd" in training.BACKWARD.title and "autograd" in exercises.check_batchnorm_backward.__doc__
