"""BatchNorm's statistics: finding the layers, PyTorch's running rule, recording, population statistics,
evaluation with chosen statistics, folding, and the float tolerances their checks use.

Notebooks write `from bnlib import stats` and then `stats.replay_running_stats(...)`.
"""

from bnlib.stats.batchnorm import batchnorm_layers, first_batchnorm, swapped_running_stats, with_per_batch_statistics
from bnlib.stats.evaluation import KeptWeightsEvaluator, accuracy_vs_momentum, evaluate_with_stats, statistics_label
from bnlib.stats.folding import fold_batchnorm
from bnlib.stats.population import PopulationStats, population_at_steps, population_stats, recalibrate
from bnlib.stats.recorded_run import record_mlp_run
from bnlib.stats.recording import BatchStatsRecorder, LayerRecording, checkpoint_steps
from bnlib.stats.running import (
    keras_to_torch_momentum,
    replay_running_average,
    replay_running_stats,
    running_stats_at,
    torch_to_keras_momentum,
)
from bnlib.stats.tolerances import replay_tolerance, rounding_tolerance

__all__ = [
    "BatchStatsRecorder", "KeptWeightsEvaluator", "LayerRecording", "PopulationStats", "accuracy_vs_momentum",
    "batchnorm_layers", "checkpoint_steps", "evaluate_with_stats", "first_batchnorm", "fold_batchnorm",
    "keras_to_torch_momentum", "population_at_steps", "population_stats", "recalibrate", "record_mlp_run",
    "replay_running_average", "replay_running_stats", "replay_tolerance", "rounding_tolerance", "running_stats_at",
    "statistics_label", "swapped_running_stats", "torch_to_keras_momentum", "with_per_batch_statistics",
]  # fmt: skip
