"""Running the student's function on one case: copies of the inputs, its output read as float64 parts (or why
it cannot be), the scaled difference from the reference, and one line for an exception it raised."""

import copy
import math
import traceback
from textwrap import shorten

import torch
from torch import nn

from bnlib.exercises.base import BadOutput, Case, Outcome


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
        return f"{name} {tuple(value.shape)} {dtype_name(value.dtype)}"
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
    if frame is None:
        return line
    line += f" (at `{frame.line.strip()}`, line {frame.lineno})" if frame.line else f" (at line {frame.lineno})"
    left_in = not frame.line or frame.line.strip().startswith("raise NotImplementedError")
    if isinstance(error, NotImplementedError) and left_in and code is not None and frame.name == code.co_name:
        line += "; once your code is written, delete the `raise NotImplementedError` line"
    return line


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def input_dtype(case):
    """The dtype of the case's first floating-point tensor (a module's: its first parameter's), or None."""
    for value in case.args:
        if isinstance(value, nn.Module):
            value = next(value.parameters(), None)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype
    return None


def check_dtype(tensor, case, what):
    """BadOutput when `tensor` is not floating point or is less precise than the case's input."""
    given = input_dtype(case)
    if given is None or (tensor.is_floating_point() and torch.finfo(tensor.dtype).bits >= torch.finfo(given).bits):
        return
    raise BadOutput(f"{what} {dtype_name(tensor.dtype)} for {dtype_name(given)} input "
                    f"(return the input's dtype, {dtype_name(given)})")


def as_parts(value, exercise, case, shapes):
    """The function's returned value as {part: float64 tensor}; BadOutput when it is not of that form."""
    if exercise.evaluate is not None:
        value = exercise.evaluate(value, case)
    elif len(exercise.parts) == 1:
        value = {exercise.parts[0]: value}
    elif not isinstance(value, (tuple, list)):
        raise BadOutput(f"returned {type(value).__name__}, expected a tuple ({', '.join(exercise.parts)})")
    elif len(value) != len(exercise.parts):
        raise BadOutput(f"returned a {type(value).__name__} of length {len(value)}, expected a tuple of length "
                        f"{len(exercise.parts)} ({', '.join(exercise.parts)})")
    else:
        value = dict(zip(exercise.parts, value, strict=True))
    parts = {}
    for part, tensor in value.items():
        if not isinstance(tensor, torch.Tensor):
            raise BadOutput(f"{part} is a {type(tensor).__name__}, expected a tensor of shape {shapes[part]}")
        check_dtype(tensor, case, "returned" if len(value) == 1 else f"{part} is")
        if tuple(tensor.shape) != shapes[part]:
            raise BadOutput(f"{part} has shape {tuple(tensor.shape)}, expected {shapes[part]}")
        parts[part] = tensor.detach().to(device="cpu", dtype=torch.float64)
    return parts


def scaled_difference(got, expected, scales):
    """(largest scaled difference, a sentence saying where) over the parts in `expected`.

    NaN counts as inf, except where both sides are NaN (a mistake's formula can predict a NaN).
    """
    worst, detail = 0.0, ""
    for part, want in expected.items():
        have = got[part]
        if have.shape != want.shape:
            return math.inf, f"{part} has shape {tuple(have.shape)}, expected {tuple(want.shape)}"
        scale = torch.as_tensor(scales[part], dtype=torch.float64).clamp_min(1e-300).expand_as(want)
        error = ((have - want).abs() / scale).nan_to_num(nan=math.inf)
        error = torch.where(have.isnan() & want.isnan(), 0.0, error)
        if error.numel() and error.max().item() >= worst:
            index = tuple(torch.unravel_index(error.argmax(), error.shape))
            where = f"{part}[{', '.join(str(int(i)) for i in index)}]" if index else part
            worst = error.max().item()
            detail = f"{where}: expected {want[index].item():.6g}, got {have[index].item():.6g}"
    return worst, detail


def run_case(exercise, fn, case):
    """(Outcome of `fn` on copies of the case, the names of the arguments it changed, the exception it raised)."""
    expected = exercise.reference(case)
    args = tuple(copy_argument(value) for value in case.args)
    try:
        value = fn(*args)
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


def with_float64(case):
    """The case with its float32 tensors in float64, or None when it has none."""
    if not any(isinstance(value, torch.Tensor) and value.dtype == torch.float32 for value in case.args):
        return None
    wide = tuple(value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
                 for value in case.args)
    return Case(case.name, wide, case.data)
