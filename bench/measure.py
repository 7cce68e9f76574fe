"""Pure helpers for timings: paired ratios, a rotating order, a clock that waits for the device."""

import time

import numpy as np
import torch


def paired_ratio(numerators, denominators):
    """Median of the per-repetition ratios numerator_i / denominator_i.

    Pairing each repetition's two timings, taken minutes apart at most, cancels slow drifts in a
    shared machine's load that a ratio of two medians would keep.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(f"need equal, non-empty sequences, got {len(numerators)} and {len(denominators)} values")
    return float(np.median([top / bottom for top, bottom in zip(numerators, denominators, strict=True)]))


def rotated(items, shift):
    """`items` rotated left by `shift`, so each repetition starts with a different measure."""
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def synchronize(device):
    """Wait for queued GPU work, so a timer stopped after this counts it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_call(function, device):
    """Seconds `function()` takes, its device work included."""
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start
