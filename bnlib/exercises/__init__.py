"""Checks for the notebooks' "Your turn" exercises: each runs the student's function on generated cases,
compares with PyTorch in float64 and returns a CheckResult that begins with passed, failed or not attempted.

A failure names the first failing case and, when the output matches a common mistake's formula on the same
inputs, that mistake. `z=` adds the lecture model's real activations as one more case; `strict=True` raises.
"""

from bnlib.exercises.harness import CheckResult, ExerciseFailed
from bnlib.exercises.inference import check_batchnorm_eval, check_fold
from bnlib.exercises.training import check_batchnorm_backward, check_batchnorm_train, check_running_update

__all__ = ["CheckResult", "ExerciseFailed", "check_batchnorm_backward", "check_batchnorm_eval",
           "check_batchnorm_train", "check_fold", "check_running_update"]
