"""The records a check passes around: a generated case, a known mistake, an exercise, one case's outcome and
the result a notebook shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

TOLERANCE = 2e-3  # largest passing error, as a fraction of the column's natural scale
TIME_LIMIT = 10.0  # seconds for a whole check, past which the student's function is stopped
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
    does not apply; detect(exercise, fn, case, got) -> bool or None instead, for a mistake seen only by
    calling `fn` again.
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
    with_eps: Callable | None = None  # case -> the same case with an eps far from its own (mistakes.other_eps)


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


@dataclass
class Outcome:
    """One case's result: the parts the function returned (float64), or why there are none."""

    case: Case
    got: dict | None = None
    problem: str | None = None  # an exception line or a wrong-output message
    worst: float = 0.0
    detail: str = ""


class ExerciseFailed(AssertionError):
    """Raised by a check called with strict=True when the function does not pass."""


class BadOutput(Exception):
    """The student's function returned something of the wrong kind, shape or dtype."""
