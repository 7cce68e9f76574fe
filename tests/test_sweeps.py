"""The sweeps: a diverged run is a recorded result (not an error), runs are cached, "trains at" means every
seed reaches 90 % test accuracy, and the initialization sweep draws the weights it says it draws."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.studies import sweeps
from tests.support.splits import small_splits

SIZES = {"num_epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def data(mnist):
    return small_splits(mnist)


def test_a_diverging_run_is_recorded_as_diverged(data, tmp_path):
    entry = sweeps.sweep_run({}, data, learning_rate=1e4, seed=0, cache_dir=tmp_path, **SIZES)
    record = entry.record
    assert record["diverged"] is True and record["test_accuracy"] is None
    assert 1 <= record["steps_trained"] < 2 * 30  # stopped early: 30 steps per epoch
    assert record["last_loss"] is None or record["last_loss"] > 10 * record["first_loss"]
    again = sweeps.sweep_run({}, data, learning_rate=1e4, seed=0, cache_dir=tmp_path, **SIZES)
    assert again.cached and again.record == record  # a result like any other, read back from the cache


def test_a_sane_run_trains_to_the_end(data, tmp_path):
    record = sweeps.sweep_run({"bn": "before"}, data, learning_rate=0.1, seed=0, cache_dir=tmp_path, **SIZES).record
    assert record["diverged"] is False and record["steps_trained"] == 2 * 30
    assert 50 < record["test_accuracy"] <= 100


def test_the_sweep_table_marks_diverged_runs(data, tmp_path):
    table = sweeps.learning_rate_sweep([0.1, 1e4], data, seeds=[0], cache_dir=tmp_path, **SIZES)
    assert list(table["network"]) == ["no BatchNorm", "no BatchNorm", "BatchNorm", "BatchNorm"]
    huge = table[table["learning_rate"] == 1e4]
    assert huge["diverged"].all() and huge["test_accuracy"].isna().all() and not huge["trains"].any()
    sane = table[table["learning_rate"] == 0.1]
    assert (sane["trains"] == (sane["test_accuracy"] >= sweeps.TRAINS_AT_ACCURACY)).all()
    assert not table["cached"].any()


def test_trained_values_need_every_seed():
    table = pd.DataFrame({
        "network": ["A"] * 4 + ["B"] * 2,
        "learning_rate": [0.1, 0.1, 1.0, 1.0, 0.1, 0.1],
        "trains": [True, True, True, False, False, False],
    })
    assert sweeps.trained_values(table, "learning_rate") == {"A": [0.1], "B": []}


def test_summary_has_no_mean_where_a_seed_diverged():
    table = pd.DataFrame({
        "network": ["A"] * 4,
        "learning_rate": [0.1, 0.1, 1.0, 1.0],
        "test_accuracy": [92.0, 88.0, 95.0, math.nan],
        "diverged": [False, False, False, True],
        "trains": [True, False, True, False],
    })
    summary = sweeps.sweep_summary(table, "learning_rate").loc["A"]
    assert summary.loc[0.1].tolist() == [90.0, 0, 1]
    assert math.isnan(summary.loc[1.0, "mean test accuracy (%)"]) and summary.loc[1.0, "runs diverged"] == 1


@pytest.mark.parametrize("init_std", [0.001, 0.3])
@pytest.mark.parametrize("network", list(sweeps.NETWORKS))
def test_initialization_draws_the_stated_weights(network, init_std):
    torch.manual_seed(0)
    model = make_mlp(**sweeps.initialized(sweeps.NETWORKS[network], init_std))
    for layer in (module for module in model if isinstance(module, nn.Linear)):
        # relative standard error of a sample std of n normal draws: about 1/sqrt(2n); allow 5 of them
        count = layer.weight.numel()
        assert layer.weight.std().item() == pytest.approx(init_std, rel=5 / math.sqrt(2 * count))
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0


def test_initialization_sweep_rows(data, tmp_path):
    table = sweeps.initialization_sweep([0.01], data, learning_rate=0.1, seeds=[0, 1], cache_dir=tmp_path, **SIZES)
    assert table[["network", "init_std", "seed"]].values.tolist() == [
        ["no BatchNorm", 0.01, 0], ["no BatchNorm", 0.01, 1], ["BatchNorm", 0.01, 0], ["BatchNorm", 0.01, 1]]


def test_bad_learning_rate(data):
    with pytest.raises(ValueError, match="learning_rate"):
        sweeps.sweep_run({}, data, learning_rate=0, seed=0, **SIZES)


def test_describe_values():
    assert sweeps.describe_values([0.001, 0.3, 1.0], "none", prefix="σ = ") == "σ = 0.001, 0.3, 1"
    assert sweeps.describe_values([], "none", prefix="σ = ") == "none"
