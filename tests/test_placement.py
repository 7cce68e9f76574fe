"""bnlib.studies.placement: the grid's rows, and its runs in the run cache."""

import json

import numpy as np
import pandas as pd
import pytest

from bnlib import cache, files, runs
from bnlib.cache import config_key, fingerprint_data, full_config
from bnlib.data import MNISTSplits
from bnlib.models import count_parameters
from bnlib.runs import lecture_key, mlp_spec
from bnlib.runtime import seed_everything
from bnlib.studies import placement
from bnlib.studies.lecture_claims import CLAIMS
from bnlib.studies.placement import (
    CURVE_COLUMNS,
    TABLE_COLUMNS,
    VARIANTS,
    Variant,
    curves_long,
    run_grid,
)
from bnlib.train import History
from tests.support.cache_keys import keys_with_other_versions
from tests.support.random_states import assert_same_random_states, random_states
from tests.support.splits import random_splits

TINY = (Variant("plain", hidden=(8,)), Variant("bn", bn="before", hidden=(8,), dropout=0.5))
OPTIONS = {"num_epochs": 2, "batch_size": 32, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def tiny_data():
    return random_splits(128, 48, 40)


def grid(data, cache, **changes):
    return run_grid(**{"variants": TINY, "seeds": [7, 8], "data": data, "cache_dir": cache, **OPTIONS, **changes})


def test_run_grid_gives_one_row_per_run(tiny_data, tmp_path):
    rows = grid(tiny_data, tmp_path)
    assert list(rows.columns) == TABLE_COLUMNS + CURVE_COLUMNS
    assert list(zip(rows["variant"], rows["seed"], strict=True)) == [("plain", 7), ("plain", 8), ("bn", 7), ("bn", 8)]
    assert not rows["cached"].any()
    assert rows[["final_train_acc", "final_valid_acc", "test_acc", "best_valid_acc"]].stack().between(0, 100).all()
    assert (rows["best_valid_acc"] >= rows["final_valid_acc"]).all()
    assert np.allclose(rows["train_test_gap"], rows["final_train_acc"] - rows["test_acc"])
    assert np.allclose(rows["train_valid_gap"], rows["final_train_acc"] - rows["final_valid_acc"])
    assert (rows["seconds_per_epoch"] > 0).all()
    assert list(rows["num_params"]) == [count_parameters(variant.make_model()) for variant in TINY for _ in (7, 8)]
    assert all(len(curve) == 2 for column in CURVE_COLUMNS for curve in rows[column])
    assert rows["final_valid_acc"].tolist() == [curve[-1] for curve in rows["valid_acc_curve"]]
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_the_grid_leaves_the_global_random_state_as_it_was(tiny_data, tmp_path):
    seed_everything(5)
    for expected_cached in (False, True):  # trained (each run reseeds), then read from the cache
        before = random_states()
        rows = grid(tiny_data, tmp_path)
        assert_same_random_states(before, random_states())
        assert rows["cached"].eq(expected_cached).all()


def test_describing_the_variants_draws_no_random_numbers():
    seed_everything(5)
    before = random_states()
    table = placement.describe_variants(TINY)
    assert_same_random_states(before, random_states())
    assert table["parameters"].tolist() == [count_parameters(mlp_spec(variant.options).build()) for variant in TINY]


def test_the_run_seed_decides_the_result(tiny_data, tmp_path):
    first = grid(tiny_data, tmp_path / "a", variants=TINY[1:])
    again = grid(tiny_data, tmp_path / "b", variants=TINY[1:])  # a fresh cache: trained again
    assert first["loss_curve"].tolist() == again["loss_curve"].tolist()
    assert first["loss_curve"][0] != first["loss_curve"][1]  # seeds 7 and 8 differ


@pytest.mark.slow  # starts worker processes
def test_workers_give_the_same_runs_as_one_process(tiny_data, tmp_path):
    serial = grid(tiny_data, tmp_path / "serial")
    parallel = grid(tiny_data, tmp_path / "parallel", workers=2)  # two spawned processes
    columns = ["variant", "seed", "final_train_acc", "final_valid_acc", "test_acc", "num_params", *CURVE_COLUMNS]
    assert parallel[columns].to_dict("records") == serial[columns].to_dict("records")  # same order, same numbers
    assert sorted(path.name for path in (tmp_path / "parallel").glob("*.json")) == sorted(
        path.name for path in (tmp_path / "serial").glob("*.json")
    )


@pytest.mark.parametrize(("workers", "limit_mb", "expected"),
                         [(2, None, 2), (2, 3 * placement.WORKER_MB, 2), (2, 3 * placement.WORKER_MB - 1, 1),
                          (4, 1500, 1), (1, 100, 1)])  # fmt: skip
def test_workers_are_cut_to_one_where_the_memory_limit_cannot_hold_them(workers, limit_mb, expected):
    assert placement.affordable_workers(workers, limit_mb) == expected  # the kernel counts as one more process


def test_a_grid_in_a_small_container_trains_in_the_kernel(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(placement, "memory_limit_mb", lambda: 1024.0)  # a 1 GB container

    def no_pool(*args, **kwargs):
        raise AssertionError("no worker process may start under a 1 GB limit")

    monkeypatch.setattr(placement, "ProcessPoolExecutor", no_pool)
    serial = grid(tiny_data, tmp_path / "serial")
    assert grid(tiny_data, tmp_path / "limited", workers=2).drop(columns="seconds_per_epoch").equals(
        serial.drop(columns="seconds_per_epoch"))  # fmt: skip


def test_second_call_reads_the_cache_without_training(tiny_data, tmp_path, monkeypatch):
    first = grid(tiny_data, tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("train_model called although every run is cached")

    monkeypatch.setattr(runs, "train_model", fail)
    second = grid(tiny_data, tmp_path)
    assert second["cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns="cached"), second.drop(columns="cached"))


def test_a_changed_configuration_trains_again(tiny_data, tmp_path, monkeypatch):
    grid(tiny_data, tmp_path)
    calls = []
    original = runs.train_model
    monkeypatch.setattr(runs, "train_model", lambda *args, **kw: calls.append(1) or original(*args, **kw))
    rows = grid(tiny_data, tmp_path, num_epochs=1)
    assert len(calls) == 4 and not rows["cached"].any()
    grid(tiny_data, tmp_path, seeds=[7], learning_rate=0.05)
    assert len(calls) == 6


def test_cache_key_changes_with_every_part_of_the_configuration(tiny_data, monkeypatch):
    base = {"num_epochs": 2, "batch_size": 32, "learning_rate": 0.1}

    def key(variant=TINY[0], seed=7, data=tiny_data, device="cpu", **changes):
        config = lecture_key(mlp_spec(variant.options), seed=seed, **{**base, **changes})
        return config_key(full_config(config, fingerprint_data(data), device))

    reference = key()
    smaller = MNISTSplits(tiny_data.train, tiny_data.valid, (tiny_data.test[0][:-1], tiny_data.test[1][:-1]), "")
    changed = [
        key(variant=Variant("plain", hidden=(9,))),
        key(variant=Variant("plain", hidden=(8,), bn="after")),
        key(variant=Variant("plain", hidden=(8,), bias=False)),
        key(variant=Variant("plain", hidden=(8,), dropout=0.1)),
        key(variant=Variant("plain", hidden=(8,), init_std=0.05)),  # an argument the old grid key did not know
        key(seed=8),
        key(num_epochs=3),
        key(batch_size=64),
        key(learning_rate=0.01),
        key(data=smaller),
        key(device="meta"),
    ]
    changed += keys_with_other_versions(monkeypatch, key)
    assert reference not in changed and len(set(changed)) == len(changed)
    assert key(variant=Variant("renamed", hidden=(8,))) == reference  # the display name is not configuration
    assert key(variant=Variant("plain", hidden=[8], dropout=0)) == reference  # defaults spelled out: the same model


def test_a_notebook_run_with_the_same_settings_shares_the_grids_entry(tiny_data, tmp_path):
    rows = grid(tiny_data, tmp_path)
    options = {"num_epochs": 2, "batch_size": 32, "learning_rate": 0.1, "data": tiny_data, "device": "cpu"}
    single = runs.train_mlp_run({"hidden": (8,)}, seed=7, **options, cache_dir=tmp_path)
    assert single.cached
    (row,) = rows[(rows["variant"] == "plain") & (rows["seed"] == 7)].to_dict("records")
    assert single.history.valid_acc == row["valid_acc_curve"] and single.history.test_acc == row["test_acc"]


def test_grid_interrupted_while_writing_the_cache_trains_again(tiny_data, tmp_path, monkeypatch):
    writes = []

    def fail_on_the_json(descriptor):  # the first run's tensor file is written, then its JSON fails
        writes.append(descriptor)
        if len(writes) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", fail_on_the_json)
    with pytest.raises(KeyboardInterrupt):
        grid(tiny_data, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert not grid(tiny_data, tmp_path)["cached"].any()


def test_interrupted_training_is_not_cached(tiny_data, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        return History(minibatch_loss=[2.3], train_acc=[10.0], valid_acc=[10.0], epoch_seconds=[0.1], interrupted=True)

    monkeypatch.setattr(runs, "train_model", interrupted)
    with pytest.warns(UserWarning, match="Interrupted"):
        rows = grid(tiny_data, tmp_path)
    assert rows.empty and list(rows.columns) == TABLE_COLUMNS + CURVE_COLUMNS
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_cache_file_is_trained_again(tiny_data, tmp_path):
    grid(tiny_data, tmp_path, seeds=[7], variants=TINY[:1])
    (path,) = tmp_path.glob("*.json")
    path.write_text('{"config": ')
    with pytest.warns(UserWarning, match="Run cache"):
        rows = grid(tiny_data, tmp_path, seeds=[7], variants=TINY[:1])
    assert not rows["cached"].any() and json.loads(path.read_text())["config"]["config"]["seed"] == 7


def test_a_cache_file_from_another_configuration_is_not_used(tiny_data, tmp_path):
    grid(tiny_data, tmp_path, variants=TINY[:1])
    first, second = sorted(tmp_path.glob("*.json"))
    first_text, second_text = first.read_text(), second.read_text()
    first.write_text(second_text), second.write_text(first_text)  # each file now holds the other run
    with pytest.warns(UserWarning, match="another configuration"):
        rows = grid(tiny_data, tmp_path, variants=TINY[:1])
    assert not rows["cached"].any()


def test_grid_runs_go_to_the_run_cache_folder(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "env"))
    grid(tiny_data, None, seeds=[7])
    assert len(list((tmp_path / "env").glob("*.json"))) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [7, 7]}, "unique"),
        ({"seeds": [True]}, "seeds"),
        ({"variants": (TINY[0], TINY[0])}, "names must be unique"),
        ({"variants": ("plain",)}, "Variant"),
        ({"workers": 0}, "workers must be an integer >= 1"),
    ],
)
def test_run_grid_rejects_bad_arguments(tiny_data, tmp_path, changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        grid(tiny_data, tmp_path, **changes)


def test_layer_order_reads_like_the_model():
    assert placement.layer_order(Variant("x", bn="before")) == "Linear(bias=False) → BatchNorm1d → ReLU"
    after = Variant("x", bn="after", dropout=0.5)
    assert placement.layer_order(after) == "Linear → ReLU → BatchNorm1d → Dropout(0.5)"
    assert len(placement.VARIANTS) == 7


def test_curves_long_has_one_row_per_epoch(tiny_data, tmp_path):
    curves = curves_long(grid(tiny_data, tmp_path))
    assert len(curves) == 4 * 2 and curves["epoch"].tolist() == [1, 2] * 4
    assert curves[["train_acc", "valid_acc", "loss"]].notna().all().all()


# The claims of notebook 03 ---------------------------------------------------------------------------------------


def test_every_claim_compares_variants_of_the_grid():
    names = {variant.name for variant in VARIANTS}
    metrics = set(TABLE_COLUMNS)
    for claim in CLAIMS:
        assert claim.a in names and (claim.b is None or claim.b in names) and claim.a != claim.b, claim.text
        assert claim.metric in metrics, claim.text
        assert claim.b is not None or claim.expected == "same", claim.text  # a variant against 0: "is it 0?"


def test_claims_say_who_made_them():
    by_source = {}
    for claim in CLAIMS:
        by_source.setdefault(claim.asked_by, []).append(claim)
    # The runs without BatchNorm are the course's dropout notebook's, not this lecture's.
    assert all("without BatchNorm" in claim.text for claim in by_source["dropout notebook"])
    assert all(claim.b != "no BN" for claim in by_source["lecture"])
    # "Not overfitting anymore" is tested for both BatchNorm + dropout networks, as a gap of 0 within the margin.
    gap_zero = [claim.a for claim in CLAIMS if claim.b is None]
    assert gap_zero == ["BN before ReLU + dropout", "BN after ReLU + dropout"]
    assert {claim.metric for claim in CLAIMS if "gap" in claim.text} == {"train_valid_gap"}
