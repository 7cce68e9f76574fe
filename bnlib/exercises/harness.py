"""The machinery behind `bnlib.exercises`: run a student's function on copies of generated cases,
compare with PyTorch's float64 answer column by column, name a known mistake, report in one short block.

An error is divided by its column's natural scale (for a forward pass |gamma|), so that float32 answers
pass next to a float64 reference however ill-conditioned the case, and a scaled error <= TOLERANCE passes.
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from textwrap import shorten

import torch
from torch import nn

TOLERANCE = 2e-3  # largest passing error, as a fraction of the column's natural scale
STATUSES = ("passed", "failed", "not attempted")


@dataclass(frozen=True)
class Case:
    """One generated input: `args` in the order the student's function takes them, `data` for the checker."""

    name: str
    args: tuple
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A common error, recognised when the student's output matches its `formula` on the same inputs.

    formula(case, got) -> {part: float64 tensor} for the parts the mistake changes, or None where it
    does not apply; detect(fn, case, got) -> bool instead, for a mistake seen only by calling `fn` again.
    """

    name: str
    hint: str
    formula: Callable | None = None
    detect: Callable | None = None


@dataclass(frozen=True)
class Exercise:
    """What a check compares: the function's argument names, the parts it returns, the reference and scales."""

    title: str
    arg_names: tuple
    parts: tuple  # names of the returned values, e.g. ("output",) or ("dz", "dgamma", "dbeta")
    reference: Callable  # case -> {part: float64 tensor}, PyTorch's answer on copies of the inputs
    scales: Callable  # case -> {part: tensor broadcastable to the part}, each column's natural scale
    mistakes: tuple = ()
    evaluate: Callable | None = None  # (returned value, case) -> {part: tensor}; default: unpack the parts


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check; it displays as its message, which begins with its status."""

    status: str  # one of STATUSES
    message: str
    mistake: str | None = None  # the name of the recognised mistake, when one is

    @property
    def passed(self):
        return self.status == "passed"

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return self.message

    __str__ = __repr__


class ExerciseFailed(AssertionError):
    """Raised by a check called with strict=True when the function does not pass."""


class BadOutput(Exception):
    """The student's function returned something of the wrong kind or shape."""


@dataclass
class Outcome:
    """One case's result: the parts the function returned (float64), or why there are none."""

    case: Case
    got: dict | None = None
    problem: str | None = None  # an exception line or a wrong-output message
    worst: float = 0.0
    detail: str = ""


def copy_argument(value):
    """A copy the student's function may change at will: tensors cloned, modules deep-copied."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, nn.Module):
        return copy.deepcopy(value)
    return value


def same_argument(value, original):
    """Whether `value` still equals `original` (an in-place change shows as False)."""
    if isinstance(original, torch.Tensor):
        return value.shape == original.shape and torch.equal(value, original)
    if isinstance(original, nn.Module):
        mine, theirs = value.state_dict(), original.state_dict()
        return mine.keys() == theirs.keys() and all(same_argument(mine[key], theirs[key]) for key in theirs)
    return True


def describe_argument(name, value):
    """A few words for a case header: shape and dtype of a tensor, the layer's size, or the value."""
    if isinstance(value, torch.Tensor):
        return f"{name} {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, nn.Linear):
        return f"{name} Linear({value.in_features}, {value.out_features}, bias={value.bias is not None})"
    if isinstance(value, nn.modules.batchnorm._BatchNorm):
        return f"{name} {type(value).__name__}({value.num_features}, eps={value.eps:g})"
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value!r}"


def describe_exception(error, fn):
    """One line: the exception's type and first message line, and the student's line that raised it."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {shorten(text[0], 160, placeholder=' ...')}" if text else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)[1:]  # [0] is the checker's own call
    code = getattr(fn, "__code__", None)
    own = [frame for frame in frames if code is not None and frame.filename == code.co_filename]
    frame = (own or frames or [None])[-1]
    if frame is not None and frame.line:
        line += f" (at `{frame.line.strip()}`, line {frame.lineno})"
    return line


def as_parts(value, exercise, case, shapes):
    """The function's returned value as {part: float64 tensor}; BadOutput when it is not of that form."""
    if exercise.evaluate is not None:
        value = exercise.evaluate(value, case)
    elif len(exercise.parts) == 1:
        value = {exercise.parts[0]: value}
    elif not isinstance(value, (tuple, list)) or len(value) != len(exercise.parts):
        raise BadOutput(f"returned {type(value).__name__}, expected a tuple ({', '.join(exercise.parts)})")
    else:
        value = dict(zip(exercise.parts, value, strict=True))
    parts = {}
    for part, tensor in value.items():
        if not isinstance(tensor, torch.Tensor):
            raise BadOutput(f"{part} is a {type(tensor).__name__}, expected a tensor of shape {shapes[part]}")
        if tuple(tensor.shape) != shapes[part]:
            raise BadOutput(f"{part} has shape {tuple(tensor.shape)}, expected {shapes[part]}")
        parts[part] = tensor.detach().to(device="cpu", dtype=torch.float64)
    return parts


def scaled_difference(got, expected, scales):
    """(largest scaled difference, a sentence saying where) over the parts in `expected`; NaN counts as inf."""
    worst, detail = 0.0, ""
    for part, want in expected.items():
        have = got[part]
        if have.shape != want.shape:
            return math.inf, f"{part} has shape {tuple(have.shape)}, expected {tuple(want.shape)}"
        scale = torch.as_tensor(scales[part], dtype=torch.float64).clamp_min(1e-300).expand_as(want)
        error = ((have - want).abs() / scale).nan_to_num(nan=math.inf)
        if error.numel() and error.max().item() >= worst:
            index = tuple(torch.unravel_index(error.argmax(), error.shape))
            where = f"{part}[{', '.join(str(int(i)) for i in index)}]" if index else part
            worst = error.max().item()
            detail = f"{where}: expected {want[index].item():.6g}, got {have[index].item():.6g}"
    return worst, detail


def run_case(exercise, fn, case):
    """Outcome of `fn` on copies of the case; NotImplementedError passes through (the exercise is not attempted)."""
    expected = exercise.reference(case)
    args = tuple(copy_argument(value) for value in case.args)
    try:
        value = fn(*args)
    except NotImplementedError:
        raise
    except Exception as error:  # the student's code: report it in one line, never stop the notebook
        return Outcome(case, problem=f"your function raised {describe_exception(error, fn)}"), [], error
    changed = [name for name, value_, original in zip(exercise.arg_names, args, case.args, strict=True)
               if not same_argument(value_, original)]
    try:
        got = as_parts(value, exercise, case, {part: tuple(tensor.shape) for part, tensor in expected.items()})
    except BadOutput as error:
        return Outcome(case, problem=str(error)), changed, None
    worst, detail = scaled_difference(got, expected, exercise.scales(case))
    return Outcome(case, got=got, worst=worst, detail=detail), changed, None


def passes_in_float64(exercise, fn, case):
    """Whether `fn` passes the case when its float32 tensors come in float64: a float32 precision problem."""
    if not any(isinstance(value, torch.Tensor) and value.dtype == torch.float32 for value in case.args):
        return False
    wide = tuple(value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
                 for value in case.args)
    outcome = run_case(exercise, fn, Case(case.name, wide, case.data))[0]
    return outcome.problem is None and outcome.worst <= TOLERANCE


def mistake_matches(mistake, exercise, fn, outcome):
    """True/False when the mistake applies to this outcome's case, None when it does not."""
    if outcome.got is None:
        return None
    if mistake.detect is not None:
        return mistake.detect(fn, outcome.case, outcome.got) if outcome.worst > TOLERANCE else None
    predicted = mistake.formula(outcome.case, outcome.got)
    if predicted is None:
        return None
    return scaled_difference(outcome.got, predicted, exercise.scales(outcome.case))[0] <= TOLERANCE


def recognise_mistake(exercise, fn, outcomes):
    """The mistake that matches a failing case and contradicts the fewest other cases, or None."""
    failing = [outcome for outcome in outcomes if outcome.worst > TOLERANCE and outcome.got is not None]
    best, fewest = None, math.inf
    for mistake in exercise.mistakes:
        verdicts = [mistake_matches(mistake, exercise, fn, outcome) for outcome in outcomes]
        if not any(verdict for verdict, outcome in zip(verdicts, outcomes, strict=True) if outcome in failing):
            continue
        contradictions = sum(verdict is False for verdict in verdicts)
        if contradictions < fewest:
            best, fewest = mistake, contradictions
    return best


def failure_message(exercise, fn, outcomes, index, notes):
    """The failed block: the first failing case, what differs, and the recognised mistake if any."""
    outcome = outcomes[index]
    arguments = ", ".join(describe_argument(name, value)
                          for name, value in zip(exercise.arg_names, outcome.case.args, strict=True))
    lines = [f"failed: {exercise.title}, case {index + 1} of {len(outcomes)}: {outcome.case.name} ({arguments})"]
    if outcome.problem:
        lines.append(f"  {outcome.problem}")
    else:
        lines.append(f"  {outcome.detail}; largest scaled difference {outcome.worst:.2g} "
                     f"(allowed {TOLERANCE:g} of the column's scale)")
    mistake = recognise_mistake(exercise, fn, outcomes)
    if mistake is not None:
        lines.append(f"  likely mistake: {mistake.name}. {mistake.hint}")
    return CheckResult("failed", "\n".join(lines + notes), mistake.name if mistake else None)


def run_exercise(exercise, fn, cases, *, strict=False):
    """Run `fn` on every case and return a CheckResult; with strict=True anything but a pass raises."""
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    outcomes, changed, first_error = [], set(), None
    try:
        with torch.random.fork_rng(devices=[]):  # the student's code must not move the notebook's random state
            for case in cases:
                outcome, names, error = run_case(exercise, fn, case)
                outcomes.append(outcome)
                changed.update(names)
                first_error = first_error or error
    except NotImplementedError as error:
        result = CheckResult("not attempted", f"not attempted: {exercise.title}: the function still raises "
                             "NotImplementedError; write your code in its place and run the cell again.")
        return _finish(result, strict, error)
    notes = [f"  note: your function changed its argument {name!r} in place; PyTorch leaves its inputs alone."
             for name in exercise.arg_names if name in changed]
    failing = [i for i, outcome in enumerate(outcomes) if outcome.problem or outcome.worst > TOLERANCE]
    if failing:
        return _finish(failure_message(exercise, fn, outcomes, failing[0], notes), strict, first_error)
    worst = max(outcome.worst for outcome in outcomes)
    message = (f"passed: {exercise.title}: all {len(outcomes)} cases agree with PyTorch "
               f"(largest scaled difference {worst:.1e}, allowed {TOLERANCE:g})")
    return CheckResult("passed", "\n".join([message, *notes]))


def _finish(result, strict, error):
    if strict and not result.passed:
        raise ExerciseFailed(result.message) from error
    return result
