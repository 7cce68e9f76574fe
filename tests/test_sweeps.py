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


def test_classify_settings_on_a_hand_made_table():
    table = pd.DataFrame({
        "network": ["A"] * 10 + ["B"] * 4,
        "learning_rate": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0, 10.0, 10.0, 30.0, 30.0, 0.1, 0.1, 1.0, 1.0],
        "test_accuracy": [67.0, 70.0,  # in between: trains slowly, not at chance
                          95.0, 91.0,  # trains: every seed at 90 % or more
                          95.0, 89.9,  # in between: one seed short of 90 %
                          10.0, 14.0,  # at chance: every seed below 20 %
                          96.0, math.nan,  # diverged: one diverged seed marks the rate
                          90.0, 90.0, 11.35, 25.0],  # B: trains at 0.1 (90 counts); 25 % keeps 1.0 off "at chance"
        "diverged": [False] * 9 + [True] + [False] * 4,
    })
    assert sweeps.classify_settings(table, "learning_rate") == {
        "A": {"trains": [0.1], "at chance": [10.0], "diverged": [30.0], "in between": [0.01, 1.0]},
        "B": {"trains": [0.1], "at chance": [], "diverged": [], "in between": [1.0]},
    }


def test_classification_rule_names_every_threshold():
    assert sweeps.classification_rule(3) == (
        "trains: every seed reaches 90 % test accuracy in 3 epochs; at chance: every seed stays below 20 %; "
        "diverged: at least one seed's loss became non-finite or exceeded 10 x its first value; in between: the rest")
    assert "in 1 epoch;" in sweeps.classification_rule(1)


def test_initial_output_std_at_sigma_1_is_about_sqrt_of_45_halves():
    # Behind the last BatchNorm (mean 0, variance 1 over the batch) and a ReLU, each of the 45 units has a mean
    # square of about 1/2; with N(0, 1) output weights a logit's variance is about 45 / 2 (std 4.74), on average
    # over the weight draws. Twenty draws average out most of the variation between draws.
    images = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    options = sweeps.initialized(sweeps.NETWORKS["BatchNorm"], 1.0)
    variances = [sweeps.initial_output_std(options, images, seed) ** 2 for seed in range(20)]
    assert sum(variances) / len(variances) == pytest.approx(45 / 2, rel=0.15)
    small = sweeps.initial_output_std(sweeps.initialized(sweeps.NETWORKS["BatchNorm"], 0.01), images, 0)
    assert small == pytest.approx(0.01 * 4.74, rel=0.5)  # the output Linear scales with sigma: no BatchNorm after it


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
