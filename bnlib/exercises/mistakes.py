"""Recognising a mistake: the formulas the exercises share, the mistakes found by calling the function again
(eps ignored, float32 cancellation), and the choice of the mistake that explains the failing cases best."""

import math

import torch

from bnlib.exercises.base import TOLERANCE, Mistake
from bnlib.exercises.outputs import run_case, scaled_difference, with_float64

EPS_IGNORED = "eps ignored (the function must use its eps argument)"
EPS_VALUES = "The cases pass different values of eps (1e-5, 1e-3 and 0.1, with variances of the same size): " \
             "a hard-coded eps passes only the cases where it happens to be right."
CANCELLATION = "the variance as E[z²] − E[z]² (catastrophic cancellation)"
CANCELLATION_HINT = ("Your answer is right when the same numbers come in float64 but not in float32: E[z²] − E[z]² "
                     "subtracts two nearly equal numbers when the mean is large next to the spread, and float32 "
                     "loses the digits. Compute the variance as the mean of squared deviations from the mean.")


def normalize(z, mean, var, gamma, beta, eps):
    """gamma * (z - mean) / sqrt(var + eps) + beta, the statistics broadcast against z."""
    return gamma * (z - mean) / torch.sqrt(var + eps) + beta


def as_float64(*values):
    """The tensors as float64 copies, detached: every reference and mistake formula computes in float64."""
    return tuple(value.detach().to(torch.float64) for value in values)


def column_rms(values):
    """Root mean square of each column: (N, C) -> (C,)."""
    return values.pow(2).mean(0).sqrt()


def passes_in_float64(exercise, fn, case, got=None):
    """Whether `fn` passes the case when its float32 tensors come in float64: a float32 precision problem."""
    wide = with_float64(case)
    if wide is None:
        return False
    outcome = run_case(exercise, fn, wide)[0]
    return outcome.problem is None and outcome.worst <= TOLERANCE


def ignores_eps(exercise, fn, case, got):
    """Whether fn's output stays the same when the case's eps changes enough to change the right answer."""
    other = exercise.with_eps(case)
    reference = exercise.reference(case)
    if scaled_difference(exercise.reference(other), reference, exercise.scales(case))[0] <= 10 * TOLERANCE:
        return None  # this case cannot tell
    outcome = run_case(exercise, fn, other)[0]
    if outcome.got is None:
        return None
    return scaled_difference(outcome.got, got, exercise.scales(case))[0] <= TOLERANCE


def other_eps(eps):
    """An eps far from `eps`: 0.1 for a small one, 1e-5 for a large one."""
    return 0.1 if eps < 0.01 else 1e-5


def eps_ignored(name=EPS_IGNORED):
    return Mistake(name, EPS_VALUES, detect=ignores_eps)


def affine_left_out(mistake_for):
    """The three "gamma and/or beta left out" mistakes of a forward pass; `mistake_for(gamma, beta)` turns a
    normalization step (statistics -> output with that gamma and beta) into the exercise's Mistake formula."""
    def formula(keep_gamma, keep_beta):
        return mistake_for(lambda x, mean, var, gamma, beta, eps: normalize(
            x, mean, var, gamma if keep_gamma else 1.0, beta if keep_beta else 0.0, eps))
    return (
        Mistake("gamma and beta left out", "Scale by gamma and shift by beta after normalizing.",
                formula(False, False)),
        Mistake("gamma left out", "Multiply the normalized values by gamma.", formula(False, True)),
        Mistake("beta left out", "Add beta after scaling by gamma.", formula(True, False)),
    )


def cancellation():
    return Mistake(CANCELLATION, CANCELLATION_HINT, detect=passes_in_float64)


def mistake_matches(mistake, exercise, fn, outcome):
    """True/False when the mistake applies to this outcome's case, None when it does not."""
    if outcome.got is None:
        return None
    if mistake.detect is not None:
        return mistake.detect(exercise, fn, outcome.case, outcome.got) if outcome.worst > TOLERANCE else None
    predicted = mistake.formula(outcome.case, outcome.got)
    if predicted is None:
        return None
    return scaled_difference(outcome.got, predicted, exercise.scales(outcome.case))[0] <= TOLERANCE


def recognise_mistake(exercise, fn, outcomes):
    """The mistake that matches a failing case and contradicts the fewest other cases, or None."""
    failing = {id(outcome) for outcome in outcomes if outcome.worst > TOLERANCE and outcome.got is not None}
    best, fewest = None, math.inf
    for mistake in exercise.mistakes:
        verdicts = [mistake_matches(mistake, exercise, fn, outcome) for outcome in outcomes]
        if not any(verdict for verdict, outcome in zip(verdicts, outcomes, strict=True) if id(outcome) in failing):
            continue
        contradictions = sum(verdict is False for verdict in verdicts)
        if contradictions < fewest:
            best, fewest = mistake, contradictions
    return best
