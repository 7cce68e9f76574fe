"""Data-parallel BatchNorm with real processes: the process-group machinery, DDP's buffer sync, AllReduceBatchNorm1d
against one process on the global batch, nn.SyncBatchNorm's CPU error, and the run cache.

The tests that start processes are marked slow (a rank imports torch: seconds each).
"""

import queue
import sys

import psutil
import pytest
import torch
from torch import nn

from bnlib.cache import CACHE_DIR_ENV
from bnlib.studies import data_parallel, process_group, rank_statistics
from bnlib.studies.data_parallel import Configuration, train_data_parallel_configurations, train_global_batch
from bnlib.studies.process_group import RankFailed, run_on_ranks
from tests.support.ranks import all_reduce_batchnorm_step, raise_on_rank, report_own_memory, report_rank
from tests.support.splits import random_splits

MODEL = {"hidden": [12, 8], "bn": "before"}
RUN = {"world_size": 2, "steps": 6, "batch_size_per_device": 8, "seed": 3}
CONFIGURATIONS = [Configuration(None, True), Configuration(None, False), Configuration("all_reduce"),
                  Configuration("torch")]  # fmt: skip


def _ranks_of_this_process():
    """The live child processes, the multiprocessing resource tracker (it lives as long as this process) left out."""
    return {child.pid for child in psutil.Process().children(recursive=True)
            if child.is_running() and "resource_tracker" not in " ".join(child.cmdline())}  # fmt: skip


def _check_all_reduce_batchnorm_on_three_ranks_is_batchnorm_on_the_global_batch():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(18, 4, generator=generator) * 2 + 5
    output_weights = torch.randn(18, 4, generator=generator)
    sizes = [5, 6, 7]  # uneven shards: the count is all-reduced too
    ranks = run_on_ranks(all_reduce_batchnorm_step, {"inputs": inputs, "output_weights": output_weights,
                                                     "sizes": sizes, "momentum": 0.1}, world_size=3)  # fmt: skip
    reference = nn.BatchNorm1d(4, momentum=0.1)
    with torch.no_grad():
        reference.weight.copy_(torch.linspace(0.5, 1.5, 4))
        reference.bias.copy_(torch.linspace(-1.0, 1.0, 4))
    whole = inputs.clone().requires_grad_(True)
    output = reference.train()(whole)
    (output * output_weights).sum().backward()  # a sum over the ranks' losses: what the ranks' backward computes
    tolerance = {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(torch.cat([rank["output"] for rank in ranks]), output.detach(), **tolerance)
    torch.testing.assert_close(torch.cat([rank["input_grad"] for rank in ranks]), whole.grad, **tolerance)
    for rank in ranks:  # every rank holds the global batch's running statistics
        torch.testing.assert_close(rank["running_mean"], reference.running_mean, **tolerance)
        torch.testing.assert_close(rank["running_var"], reference.running_var, **tolerance)
    # gamma's and beta's gradients are each rank's own; DDP's all-reduce adds them up (and divides by the ranks)
    torch.testing.assert_close(sum(rank["weight_grad"] for rank in ranks), reference.weight.grad, **tolerance)
    torch.testing.assert_close(sum(rank["bias_grad"] for rank in ranks), reference.bias.grad, **tolerance)


@pytest.mark.slow
def test_a_raising_rank_comes_back_as_one_line_leaves_no_process_behind_and_the_next_run_works():
    """One spawn of 2 ranks that fails, then one of 3: AllReduceBatchNorm1d against BatchNorm on the global batch."""
    before = _ranks_of_this_process()
    with pytest.raises(RankFailed) as raised:
        run_on_ranks(raise_on_rank, {"failing_rank": 1}, world_size=2, timeout_s=120)
    assert str(raised.value) == "rank 1 failed: ValueError: rank 1 was asked to fail"
    assert _ranks_of_this_process() <= before  # rank 0, blocked in its all-reduce, was stopped and joined
    _check_all_reduce_batchnorm_on_three_ranks_is_batchnorm_on_the_global_batch()  # a second run in this process works
    assert _ranks_of_this_process() <= before


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The four configurations from one spawn of 2 ranks, and one process on the same global batches."""
    data = random_splits(train=64, valid=8, test=32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(tmp_path_factory.mktemp("data-parallel-cache")))
        configurations = train_data_parallel_configurations(MODEL, CONFIGURATIONS, data=data, **RUN)
        whole = train_global_batch(MODEL, data=data, **RUN)
        patch.setattr(data_parallel, "run_on_ranks", _no_spawn)
        again = train_data_parallel_configurations(MODEL, CONFIGURATIONS, data=data, **RUN)
    return {"configurations": configurations, "global": whole, "again": again}


def _no_spawn(*_args, **_kwargs):
    raise AssertionError("a warm run must not start processes")


@pytest.mark.slow
def test_a_second_call_reads_every_configuration_from_the_cache(runs):
    assert not any(run.cached for run in runs["configurations"].values())
    assert all(run.cached for run in runs["again"].values())
    for configuration, run in runs["again"].items():
        assert run.record == runs["configurations"][configuration].record


@pytest.mark.slow
def test_buffer_sync_broadcasts_rank0_then_each_rank_updates_with_its_shard(runs):
    synced = runs["configurations"][Configuration(None, True)]
    for row in rank_statistics.buffer_sync_check(synced):
        assert row["found rank 0's buffers, bit for bit"]
        assert row["max |buffer - (0.9 found + 0.1 own shard)|"] <= 1e-6
    assert rank_statistics.rank_spread(synced, "running_mean")[-1] > 0  # the last step's shards differ
    drifting = runs["configurations"][Configuration(None, False)]
    assert not all(row["found rank 0's buffers, bit for bit"] for row in rank_statistics.buffer_sync_check(drifting))
    # rank 0 never receives the others' buffers: its checkpoint is the same with or without the sync
    torch.testing.assert_close(drifting.model.state_dict(), synced.model.state_dict(), rtol=0, atol=0)
    own, whole = rank_statistics.checkpoint_running_mean(synced, rank_statistics.rank_layers(synced)[0])
    assert own <= 1e-5 < whole  # rank 0's checkpoint holds rank 0's shards only


@pytest.mark.slow
def test_all_reduce_batchnorm_trains_like_one_process_on_the_global_batch(runs):
    synchronized, whole = runs["configurations"][Configuration("all_reduce")], runs["global"]
    for name in ("running_mean", "running_var"):
        for rank in range(2):
            assert rank_statistics.max_difference(synchronized, whole, name, rank=rank) <= 1e-5
    assert rank_statistics.max_weight_difference(synchronized, whole) <= 1e-5
    plain = runs["configurations"][Configuration(None, True)]
    assert rank_statistics.max_weight_difference(plain, whole) > 1e-3  # per-rank statistics train another model


@pytest.mark.slow
def test_torch_sync_batchnorm_refuses_cpu_tensors_in_a_process_group(runs):
    errors = runs["configurations"][Configuration("torch")].record["errors"]
    assert errors["ddp"].startswith("ValueError") and "GPU" in errors["ddp"]
    assert errors["forward"].startswith("ValueError") and "GPU" in errors["forward"]


class _SilentRank:
    exitcode = None  # alive, never answering


def test_the_time_limit_stops_waiting_for_silent_ranks():
    with pytest.raises(RankFailed, match=r"the 2 ranks timed out after 0.3 s \(0 had answered\)"):
        process_group._collect([_SilentRank(), _SilentRank()], queue.Queue(), 0.3)


def test_a_failing_spawn_caches_nothing(monkeypatch, tmp_path):
    def fail(*_args, **_kwargs):
        raise RankFailed("rank 1 failed: ValueError: a test")

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(data_parallel, "run_on_ranks", fail)
    with pytest.raises(RankFailed, match="rank 1 failed: ValueError: a test"):
        train_data_parallel_configurations(MODEL, CONFIGURATIONS[:1], data=random_splits(64, 8, 32), **RUN)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments():
    data = random_splits(train=64, valid=8, test=32)
    with pytest.raises(ValueError, match=r"sync must be one of \(None, 'all_reduce', 'torch'\), got 'nccl'"):
        Configuration("nccl")
    with pytest.raises(ValueError, match="world_size must be an integer >= 2, got 1"):
        train_data_parallel_configurations(MODEL, CONFIGURATIONS, data=data, **{**RUN, "world_size": 1})
    with pytest.raises(ValueError, match="at most the 64 training images, got 2 \\* 40"):
        train_data_parallel_configurations(MODEL, CONFIGURATIONS, data=data, **{**RUN, "batch_size_per_device": 40})
    with pytest.raises(TypeError, match="configurations must hold Configuration objects, got str"):
        train_data_parallel_configurations(MODEL, ["plain"], data=data, **RUN)
    with pytest.raises(ValueError, match="world_size must be an integer >= 1, got 0"):
        run_on_ranks(report_rank, {}, world_size=0)


@pytest.mark.parametrize(("start_method", "limit_mb", "expected"),
                         [("fork", None, 4), ("fork", 1_600, 4), ("fork", 1_599, 2), ("fork", 1_500, 2),
                          ("spawn", 100_000, 4), ("spawn", 3_600, 4), ("spawn", 3_599, 2)])  # fmt: skip
def test_fitting_world_size_follows_the_memory_limit(start_method, limit_mb, expected, monkeypatch):
    """The kernel (1,200 MB) and 4 ranks of 100 MB (forked) or 600 MB (spawned) must fit, else 2 ranks."""
    monkeypatch.setattr(data_parallel, "memory_limit_mb", lambda: None)
    monkeypatch.setattr(data_parallel, "default_start_method", lambda: start_method)
    assert data_parallel.fitting_world_size(4, limit_mb) == expected


def test_ranks_are_forked_on_linux_until_cuda_has_started(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(process_group.sys, "platform", "linux")
    assert process_group.default_start_method() == "fork"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert process_group.default_start_method() == "spawn"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    for platform in ("darwin", "win32"):
        monkeypatch.setattr(process_group.sys, "platform", platform)
        assert process_group.default_start_method() == "spawn"


def test_an_unknown_start_method_is_refused_by_name():
    with pytest.raises(ValueError, match=r"start_method must be one of \(None, 'fork', 'spawn'\), got 'forkserver'"):
        run_on_ranks(report_rank, {}, world_size=2, start_method="forkserver")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the default on Linux only")
def test_forked_ranks_share_the_parents_memory_and_answer_as_spawned_ones_do():
    """A spawned rank imports torch again (about 280 MB of its own here, CUDA build); a forked one shares the parent's
    pages (about 5 MB of its own). Both see the same tensor."""
    tensor = torch.arange(1_000_000, dtype=torch.float64)
    answers = {method: run_on_ranks(report_own_memory, {"tensor": tensor}, world_size=2, start_method=method)
               for method in ("fork", "spawn")}  # fmt: skip
    for method, ranks in answers.items():
        assert [rank["sum"] for rank in ranks] == [tensor.sum().item()] * 2, method
    forked, spawned = (max(rank["own_mb"] for rank in answers[method]) for method in ("fork", "spawn"))
    assert forked < 0.5 * spawned, (forked, spawned)
