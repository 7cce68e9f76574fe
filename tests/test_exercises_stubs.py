"""A stub is "not attempted" by its structure (ast of the source, else bytecode), in both make student's and
nbgrader's style; a written function that raises NotImplementedError is an error with its line; an endless loop
fails by the check's time limit and the notebook stays usable."""

import inspect
import threading

import pytest
import torch

from bnlib import exercises
from bnlib.exercises.base import ExerciseFailed
from bnlib.exercises.stubs import _stub_by_bytecode, is_stub
from bnlib.exercises.timelimit import can_limit_time
from tests.support.exercise_answers import train_reference

CHECKS = [exercises.check_batchnorm_train, exercises.check_batchnorm_backward, exercises.check_running_update,
          exercises.check_batchnorm_eval, exercises.check_fold, exercises.check_batchnorm2d_train,
          exercises.check_running_update_nd]


# --- stubs are recognised by their structure, from the source or else the bytecode ---

MAKE_STUDENT_STUB = '''
def batchnorm_train(z, gamma, beta, eps):
    """Return BatchNorm's training-mode output, shape (N, C)."""
    raise NotImplementedError("your code here")
'''
NBGRADER_STUB = '''
def batchnorm_train(z, gamma, beta, eps):
    # YOUR CODE HERE
    raise NotImplementedError()
'''
BARE_STUB = '''
def batchnorm_train(z, gamma, beta, eps):
    raise NotImplementedError
'''
WRITTEN_BUT_RAISE_LEFT = '''
def batchnorm_train(z, gamma, beta, eps):
    # YOUR CODE HERE
    out = gamma * (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps) + beta
    raise NotImplementedError()
'''


def define(source, *, with_source, tmp_path=None):
    """The function `source` defines: from a file (inspect finds its source) or from exec (bytecode only)."""
    if with_source:
        path = tmp_path / f"student_{abs(hash(source))}.py"
        path.write_text("import torch\n" + source)
        namespace = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    else:
        namespace = {"torch": torch}
        exec(compile(source, "<no source>", "exec"), namespace)
    return namespace["batchnorm_train"]


@pytest.mark.parametrize("with_source", [True, False], ids=["ast", "bytecode"])
@pytest.mark.parametrize("source", [MAKE_STUDENT_STUB, NBGRADER_STUB, BARE_STUB],
                         ids=["make-student", "nbgrader", "bare"])
def test_both_stub_styles_are_not_attempted_from_source_or_bytecode(source, with_source, tmp_path):
    fn = define(source, with_source=with_source, tmp_path=tmp_path)
    if not with_source:
        with pytest.raises(OSError):
            inspect.getsource(fn)
    assert is_stub(fn) and _stub_by_bytecode(fn.__code__)
    result = exercises.check_batchnorm_train(fn)
    assert result.status == "not attempted", result.message


@pytest.mark.parametrize("with_source", [True, False], ids=["ast", "bytecode"])
def test_a_written_function_that_raises_not_implemented_is_an_error_with_its_line(with_source, tmp_path):
    fn = define(WRITTEN_BUT_RAISE_LEFT, with_source=with_source, tmp_path=tmp_path)
    assert not is_stub(fn) and not _stub_by_bytecode(fn.__code__)
    result = exercises.check_batchnorm_train(fn)
    assert result.status == "failed"
    where = "(at `raise NotImplementedError()`, line 6)" if with_source else "(at line 5)"  # the file adds an import
    assert f"your function raised NotImplementedError {where}" in result.message
    assert "delete the `raise NotImplementedError` line" in result.message

    def only_for_float32(z, gamma, beta, eps):
        if z.dtype == torch.float64:
            raise NotImplementedError("float64 is not supported")
        return train_reference(z, gamma, beta, eps)
    result = exercises.check_batchnorm_train(only_for_float32)
    assert result.status == "failed" and "NotImplementedError: float64 is not supported (at `raise" in result.message


def test_other_functions_are_not_stubs():
    def returns(z):
        return z

    def raises_other(z):
        raise ValueError("no")

    def raises_with_a_computed_message(z):
        raise NotImplementedError(f"shape {z.shape}")
    assert not any(is_stub(fn) for fn in (returns, raises_other, raises_with_a_computed_message, len,
                                          lambda z: z, train_reference))
    assert not _stub_by_bytecode(returns.__code__) and not _stub_by_bytecode(raises_other.__code__)


# --- the time limit ---

def endless(*args):
    while True:
        pass


def endless_and_stubborn(*args):
    while True:
        try:
            while True:
                pass
        except Exception:  # a student's catch-all must not hide the time limit
            pass


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_an_endless_loop_fails_by_the_time_limit_and_the_notebook_stays_usable(check):
    assert can_limit_time()
    result = check(endless, time_limit=0.2)
    assert result.status == "failed" and result.mistake is None
    assert result.message.startswith("failed: the function did not return within 0.2 s (an endless loop?)")
    assert "case 1 of" in result.message
    assert exercises.check_batchnorm_train(train_reference).passed  # the alarm is off again
    with pytest.raises(ExerciseFailed, match="did not return within"):
        check(endless, time_limit=0.1, strict=True)


def test_a_catch_all_in_the_students_code_does_not_hide_the_time_limit():
    result = exercises.check_fold(endless_and_stubborn, time_limit=0.2)
    assert result.message.startswith("failed: the function did not return within 0.2 s")


def test_the_default_limit_is_ten_seconds_and_applies_only_in_the_main_thread():
    assert all(inspect.signature(check).parameters["time_limit"].default == 10 for check in CHECKS)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(can_limit_time()))
    thread.start()
    thread.join()
    assert seen == [False]
