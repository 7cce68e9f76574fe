"""The machinery behind `bnlib.exercises`: run a student's function on copies of generated cases, compare with
PyTorch's float64 answer column by column, name a known mistake, report in one short block.

An error is divided by its column's natural scale (for a forward pass |gamma|), so that float32 answers
pass next to a float64 reference however ill-conditioned the case, and a scaled error <= TOLERANCE passes.
A check stops the function after TIME_LIMIT seconds where SIGALRM allows (POSIX, main thread: see timelimit).
"""

from __future__ import annotations

import torch

from bnlib.exercises.base import TIME_LIMIT, TOLERANCE, CheckResult, ExerciseFailed
from bnlib.exercises.mistakes import recognise_mistake
from bnlib.exercises.outputs import describe_argument, run_case
from bnlib.exercises.stubs import is_stub
from bnlib.exercises.timelimit import TimeLimitExceeded, time_limit


def case_header(exercise, outcomes_or_cases, index, case):
    arguments = ", ".join(describe_argument(name, value)
                          for name, value in zip(exercise.arg_names, case.args, strict=True))
    return f"{exercise.title}, case {index + 1} of {len(outcomes_or_cases)}: {case.name} ({arguments})"


def failure_message(exercise, fn, outcomes, index, notes):
    """The failed block: the first failing case, what differs, and the recognised mistake if any."""
    outcome = outcomes[index]
    lines = [f"failed: {case_header(exercise, outcomes, index, outcome.case)}"]
    if outcome.problem:
        lines.append(f"  {outcome.problem}")
    else:
        lines.append(f"  {outcome.detail}; largest scaled difference {outcome.worst:.2g} "
                     f"(allowed {TOLERANCE:g} of the column's scale)")
    mistake = recognise_mistake(exercise, fn, outcomes)
    if mistake is not None:
        lines.append(f"  likely mistake: {mistake.name}. {mistake.hint}")
    return CheckResult("failed", "\n".join(lines + notes), mistake.name if mistake else None)


def timeout_message(exercise, cases, index, seconds):
    where = (f"stopped in {case_header(exercise, cases, index, cases[index])}" if index < len(cases)
             else f"stopped while {exercise.title} was looking for a likely mistake")
    return CheckResult("failed", f"failed: the function did not return within {seconds:g} s (an endless loop?)\n"
                                 f"  {where}")


def run_cases(exercise, fn, cases, progress):
    """Every case's Outcome, the argument names changed in place, and the first exception raised."""
    outcomes, changed, first_error = [], set(), None
    for index, case in enumerate(cases):
        progress[0] = index
        outcome, names, error = run_case(exercise, fn, case)
        outcomes.append(outcome)
        changed.update(names)
        first_error = first_error or error
    progress[0] = len(cases)
    return outcomes, changed, first_error


def judge(exercise, fn, cases, progress):
    """The CheckResult of `fn` on the cases, and the exception behind a failure (for strict mode)."""
    outcomes, changed, first_error = run_cases(exercise, fn, cases, progress)
    notes = [f"  note: your function changed its argument {name!r} in place; PyTorch leaves its inputs alone."
             for name in exercise.arg_names if name in changed]
    failing = [i for i, outcome in enumerate(outcomes) if outcome.problem or outcome.worst > TOLERANCE]
    if failing:
        return failure_message(exercise, fn, outcomes, failing[0], notes), first_error
    worst = max(outcome.worst for outcome in outcomes)
    message = (f"passed: {exercise.title}: all {len(outcomes)} cases agree with PyTorch "
               f"(largest scaled difference {worst:.1e}, allowed {TOLERANCE:g})")
    return CheckResult("passed", "\n".join([message, *notes])), None


def run_exercise(exercise, fn, cases, *, strict=False, time_limit_s=TIME_LIMIT):
    """Run `fn` on every case and return a CheckResult; with strict=True anything but a pass raises.

    A stub (see `stubs.is_stub`) is "not attempted" without being run; the whole check stops after
    `time_limit_s` seconds (None: no limit) where SIGALRM is available (POSIX, the main thread).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    if is_stub(fn):
        return _finish(CheckResult("not attempted", f"not attempted: {exercise.title}: the function is still the "
                                   "stub (it only raises NotImplementedError); write your code in its place and run "
                                   "the cell again."), strict, None)
    progress = [0]
    try:
        with torch.random.fork_rng(devices=[]), time_limit(time_limit_s):  # the notebook's random state stays
            result, error = judge(exercise, fn, cases, progress)
    except TimeLimitExceeded:
        result, error = timeout_message(exercise, cases, progress[0], time_limit_s), None
    return _finish(result, strict, error)


def _finish(result, strict, error):
    if strict and not result.passed:
        raise ExerciseFailed(result.message) from error
    return result
