"""Checks for the notebooks' "Your turn" exercises: each runs the student's function on generated cases,
compares with PyTorch in float64 and returns a CheckResult that begins with passed, failed or not attempted.

A failure names the first failing case and, when the output matches a common mistake's formula on the same
inputs, that mistake. `z=` adds the lecture model's real activations as one more case; `strict=True` raises;
a stub is "not attempted"; a check stops the function after `time_limit` seconds (POSIX, main thread).
"""

from bnlib.exercises.base import CheckResult, ExerciseFailed
from bnlib.exercises.conv import check_batchnorm2d_train
from bnlib.exercises.inference import check_batchnorm_eval, check_fold
from bnlib.exercises.running import check_running_update, check_running_update_nd
from bnlib.exercises.training import check_batchnorm_backward, check_batchnorm_train

__all__ = ["CheckResult", "ExerciseFailed", "check_batchnorm2d_train", "check_batchnorm_backward",
           "check_batchnorm_eval", "check_batchnorm_train", "check_fold", "check_running_update",
           "check_running_update_nd"]
