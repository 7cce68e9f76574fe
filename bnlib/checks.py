"""Argument checks shared by the public functions: each error names the parameter, the value and what is allowed."""

import numbers


def check_integer(name, value, minimum=None):
    """`value` when it is an int (not a bool) of at least `minimum`; else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum):
        allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_number(name, value, low=None, high=None, *, low_open=False, high_open=False):
    """`value` as a float when it is a real number (not a bool) in the interval; else ValueError naming `name`.

    The interval is [low, high] by default; `low_open` / `high_open` exclude an end, None leaves it unbounded.
    """
    inside = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if inside and low is not None:
        inside = value > low if low_open else value >= low
    if inside and high is not None:
        inside = value < high if high_open else value <= high
    if not inside:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def check_choice(name, value, choices):
    """`value` when it is one of `choices` (of the same type: 1 is not True); else ValueError naming `name`.

    The type matters because resolved arguments key the run cache, where True and 1 must not be two models.
    """
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
