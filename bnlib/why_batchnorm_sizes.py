"""Run sizes of notebook 08 ("why does BatchNorm help?") for full and quick mode, in one place.

Full mode fits about 2 minutes of training on a 2-core CPU from an empty cache: the paper's
Figure 1 networks train 10,000 steps instead of the paper's 50,000, and the sweeps train the
lecture's MLP for a few epochs per run.
"""

from dataclasses import dataclass

from bnlib.config import settings


@dataclass(frozen=True)
class WhyBatchNormSizes:
    """How long and how wide the runs of notebook 08 are."""

    figure_steps: int  # SGD steps of each Figure 1 network (the paper: 50,000)
    track_every: int  # steps between two measurements of the tracked sigmoid input (the paper: 50)
    accuracy_every: int  # steps between two test-accuracy measurements
    num_tracked: int  # validation images that the tracked input is measured on
    learning_rates: tuple  # the learning-rate sweep's grid
    init_stds: tuple  # the initialization sweep's grid of weight standard deviations
    sweep_epochs: int  # epochs of every sweep run
    sweep_seeds: int  # seeds per network and grid point
    early_steps: int  # "after the first few hundred steps": where percentile movement is measured from


FULL = WhyBatchNormSizes(
    figure_steps=10_000,
    track_every=50,
    accuracy_every=250,
    num_tracked=1_000,
    learning_rates=(0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6),  # half decades, well past where plain diverges
    init_stds=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    sweep_epochs=3,
    sweep_seeds=2,
    early_steps=500,
)
QUICK = WhyBatchNormSizes(
    figure_steps=600,
    track_every=50,
    accuracy_every=100,
    num_tracked=1_000,
    learning_rates=(0.01, 0.1, 1.0, 10.0, 31.6),
    init_stds=(0.001, 0.03, 1.0),
    sweep_epochs=1,
    sweep_seeds=1,
    early_steps=200,
)


def why_batchnorm_sizes(quick=None):
    """FULL or QUICK; `quick=None` follows `bnlib.settings()` (the `BNLIB_QUICK` environment variable)."""
    return QUICK if (settings().quick if quick is None else quick) else FULL
