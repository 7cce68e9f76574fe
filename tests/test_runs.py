"""bnlib.runs: the lecture's run through the cache gives the notebooks' numbers, trained, read back or retrained."""

import pytest
import torch
from random_data import random_splits

from bnlib import cache, runs
from bnlib.models import make_mlp
from bnlib.runtime import seed_everything
from bnlib.stats.recording import BatchStatsRecorder
from bnlib.stats.running import replay_running_stats
from bnlib.train import train_model

BN_MODEL = {"hidden": (8, 6), "bn": "before", "dropout": 0.25}
SIZES = {"seed": 7, "num_epochs": 2, "batch_size": 32, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def tiny_data():
    return random_splits(100, 40, 40)


def run(data, folder, options=BN_MODEL, **changes):
    return runs.train_mlp_run(options, **{**SIZES, **changes}, data=data, device="cpu", cache_dir=folder)


def notebook_run(data, options=BN_MODEL, keep_weights_at=None):
    """The notebooks' own cell: seed, build, loaders with the seed, train_model with the seed."""
    seed_everything(SIZES["seed"])
    model = make_mlp(**options)
    loaders = runs.lecture_loaders(data, SIZES["batch_size"], SIZES["seed"])
    recorder = BatchStatsRecorder(model, keep_weights_at or ())
    with recorder:
        history = train_model(model, SIZES["num_epochs"], *loaders, learning_rate=SIZES["learning_rate"],
                              device="cpu", seed=SIZES["seed"], progress=False, on_batch=recorder)  # fmt: skip
    return model, history, recorder


def assert_same_model(first, second):
    assert first.state_dict().keys() == second.state_dict().keys()
    for name, tensor in first.state_dict().items():
        assert torch.equal(second.state_dict()[name], tensor), name


def test_trained_cached_and_retrained_runs_give_identical_numbers(tiny_data, tmp_path, monkeypatch):
    trained = run(tiny_data, tmp_path)
    read = run(tiny_data, tmp_path)
    monkeypatch.setenv(cache.RETRAIN_ENV, "1")
    retrained = run(tiny_data, tmp_path)
    assert (trained.cached, read.cached, retrained.cached) == (False, True, False)
    for other in (read, retrained):
        assert other.history.minibatch_loss == trained.history.minibatch_loss
        assert other.history.train_acc == trained.history.train_acc
        assert other.history.test_acc == trained.history.test_acc
        assert_same_model(trained.model, other.model)
        assert not other.model.training
    assert len(trained.history.minibatch_loss) == 2 * (100 // 32)


def test_the_run_gives_the_notebooks_numbers(tiny_data, tmp_path):
    model, history, _ = notebook_run(tiny_data)
    trained = run(tiny_data, tmp_path)
    assert trained.history.minibatch_loss == history.minibatch_loss
    assert trained.history.valid_acc == history.valid_acc and trained.history.test_acc == history.test_acc
    assert_same_model(model, trained.model)
    assert_same_model(model, run(tiny_data, tmp_path).model)  # and read back from the cache


def test_every_setting_is_part_of_the_key(tiny_data, tmp_path):
    run(tiny_data, tmp_path)
    for changes in ({"seed": 8}, {"num_epochs": 1}, {"batch_size": 16}, {"learning_rate": 0.05}):
        assert not run(tiny_data, tmp_path, **changes).cached, changes
    assert not run(tiny_data, tmp_path, options={**BN_MODEL, "dropout": 0.0}).cached
    assert not run(tiny_data, tmp_path, record=True).cached  # a recorded run is stored apart
    assert run(tiny_data, tmp_path, options={**BN_MODEL, "activation": "relu"}).cached  # a default spelled out


def test_recording_read_back_replays_to_the_live_buffers(tiny_data, tmp_path):
    keep = [0, 1, 3, 6]
    live_model, _, live = notebook_run(tiny_data, keep_weights_at=keep)
    trained = run(tiny_data, tmp_path, record=True, keep_weights_at=keep)
    read = run(tiny_data, tmp_path, record=True, keep_weights_at=keep)
    assert read.cached and not trained.cached
    for recorder in (trained.recorder, read.recorder):
        assert recorder.steps == live.steps == 6
        assert sorted(recorder.weights) == keep and recorder.nearest_kept_step(4) == 3
        assert recorder.recording.keys() == live.recording.keys()
        for name, module in runs.make_mlp(**BN_MODEL).named_modules():
            if not isinstance(module, torch.nn.BatchNorm1d):
                continue
            stored, original = recorder.recording[name], live.recording[name]
            for field in runs.RECORDING_FIELDS:
                assert torch.equal(getattr(stored, field), getattr(original, field))
            running_mean, running_var = replay_running_stats(stored.mean, stored.var, module.momentum)
            buffers = live_model.get_submodule(name)
            torch.testing.assert_close(running_mean[-1].float(), buffers.running_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(running_var[-1].float(), buffers.running_var, rtol=1e-5, atol=1e-6)
        for step in keep:
            assert_same_model(live.model_at(step), recorder.model_at(step))


def test_recording_keeps_the_checkpoint_steps_by_default(tiny_data, tmp_path):
    recorder = run(tiny_data, tmp_path, record=True).recorder
    assert sorted(recorder.weights) == runs.checkpoint_steps(100 // 32, 2)
    with pytest.raises(TypeError, match="finished"):
        recorder.__enter__()


def test_the_random_state_is_left_as_it_was(tiny_data, tmp_path):
    torch.manual_seed(0)
    expected = torch.rand(3)
    for _ in range(2):  # trained, then read from the cache
        torch.manual_seed(0)
        run(tiny_data, tmp_path)
        assert torch.equal(torch.rand(3), expected)


def test_on_epoch_is_called_only_when_training(tiny_data, tmp_path):
    calls = []
    run(tiny_data, tmp_path, on_epoch=lambda history, num_epochs: calls.append((len(history.train_acc), num_epochs)))
    assert calls == [(1, 2), (2, 2)]
    run(tiny_data, tmp_path, on_epoch=lambda history, num_epochs: calls.append("again"))
    assert calls == [(1, 2), (2, 2)]


def test_reading_from_the_cache_says_so(tiny_data, tmp_path, capsys):
    run(tiny_data, tmp_path)
    capsys.readouterr()
    run(tiny_data, tmp_path, description="the BN model")
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("the BN model: read from the run cache") and "BNLIB_RETRAIN=1" in line


@pytest.mark.parametrize(
    ("changes", "name"),
    [({"learning_rate": 0}, "learning_rate"), ({"seed": -1}, "seed"), ({"num_epochs": 0}, "num_epochs"),
     ({"batch_size": 1.5}, "batch_size")],
)  # fmt: skip
def test_bad_arguments_name_the_parameter(tiny_data, tmp_path, changes, name):
    with pytest.raises(ValueError, match=name):
        run(tiny_data, tmp_path, **changes)
