"""Notebook 09, section 1: why BatchNorm2d keeps one mean and variance per channel over (N, H, W), not one per
(C, H, W) position: per-position statistics break the convolution's translation equivariance, and positions
that almost never vary (MNIST's empty border) get a variance near 0 that blows their values up.
"""

import torch

PER_CHANNEL = (0, 2, 3)  # BatchNorm2d: every example and every position of a channel
PER_POSITION = (0,)  # the alternative: every example at one (C, H, W) position


def batch_statistics(features, dims):
    """(mean, biased variance) of `features` (N, C, H, W) over `dims`, kept broadcastable against `features`."""
    return features.mean(dims, keepdim=True), features.var(dims, unbiased=False, keepdim=True)


def normalized(features, statistics, eps):
    """`features` normalized with `statistics` = (mean, var) from `batch_statistics` (no gamma and beta)."""
    mean, var = statistics
    return (features - mean) / torch.sqrt(var + eps)


def shift_gap(features, statistics, eps, pixels):
    """Largest |normalize(features moved right by `pixels`) − (normalized features moved right)| with fixed
    `statistics`: 0 where normalizing commutes with a shift, as a convolution does."""
    def move(values):
        return torch.roll(values, pixels, dims=3)  # along W; wrapped around, so no value is lost
    return (normalized(move(features), statistics, eps) - move(normalized(features, statistics, eps))).abs().max()


def blown_up(features, reference, eps, threshold):
    """(positions whose variance in `reference` is at most `threshold`, as a fraction; the largest |value| that
    normalizing `features` with per-position statistics of `reference` gives there, and with per-channel ones)."""
    per_position, per_channel = batch_statistics(reference, PER_POSITION), batch_statistics(reference, PER_CHANNEL)
    quiet = per_position[1][0] <= threshold  # (C, H, W)
    if not quiet.any():
        return 0.0, 0.0, 0.0
    largest = [normalized(features, statistics, eps)[:, quiet].abs().max().item()
               for statistics in (per_position, per_channel)]  # fmt: skip
    return quiet.float().mean().item(), *largest
