"""A compute() for the run cache's tests: it counts its calls, so a test sees whether a result was computed or read."""

import torch


class Computation:
    """A compute() that counts its calls and returns a fresh record and random tensors each time."""

    def __init__(self, interrupted=False):
        self.calls = 0
        self.interrupted = interrupted

    def __call__(self):
        self.calls += 1
        record = {"call": self.calls, "loss": [2.302585092994046, 0.1 + 0.2], "interrupted": self.interrupted}
        return record, {"weight": torch.randn(3, 4, dtype=torch.float64), "steps": torch.arange(5)}
