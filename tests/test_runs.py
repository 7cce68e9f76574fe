"""bnlib.runs: the cached-run recipe, and the lecture's run through it giving the notebooks' numbers, trained, read
back or retrained; bnlib.stats.recorded_run: notebook 04's recorded run."""


import pytest
import torch
from torch import nn

from bnlib import cache, runs
from bnlib.data import lecture_loaders
from bnlib.models import make_mlp
from bnlib.runtime import seed_everything
from bnlib.stats import recorded_run
from bnlib.stats.recording import BatchStatsRecorder, checkpoint_steps
from bnlib.stats.running import replay_running_stats
from bnlib.train import sgd, train_model, train_one_epoch
from tests.support.random_states import assert_same_random_states, random_states
from tests.support.splits import random_splits

BN_MODEL = {"hidden": (8, 6), "bn": "before", "dropout": 0.25}
SIZES = {"seed": 7, "num_epochs": 2, "batch_size": 32, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def tiny_data():
    return random_splits(100, 40, 40)


def run(data, folder, options=BN_MODEL, **changes):
    return runs.train_mlp_run(options, **{**SIZES, **changes}, data=data, device="cpu", cache_dir=folder)


def recorded(data, folder, **changes):
    return recorded_run.record_mlp_run(BN_MODEL, **{**SIZES, **changes}, data=data, device="cpu", cache_dir=folder)


def notebook_run(data, options=BN_MODEL, keep_weights_at=None):
    """The notebooks' own cell: seed, build, loaders with the seed, train_model with the seed."""
    seed_everything(SIZES["seed"])
    model = make_mlp(**options)
    loaders = lecture_loaders(data, SIZES["batch_size"], SIZES["seed"])
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
    assert trained.tensors == {} and trained.key == read.key


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
    assert not recorded(tiny_data, tmp_path).cached  # a recorded run is stored apart
    assert run(tiny_data, tmp_path, options={**BN_MODEL, "activation": "relu"}).cached  # a default spelled out


def test_recording_read_back_replays_to_the_live_buffers(tiny_data, tmp_path):
    keep = [0, 1, 3, 6]
    live_model, _, live = notebook_run(tiny_data, keep_weights_at=keep)
    trained = recorded(tiny_data, tmp_path, keep_weights_at=keep)
    read = recorded(tiny_data, tmp_path, keep_weights_at=keep)
    assert read.cached and not trained.cached
    assert_same_model(live_model, read.model)
    for recorder in (trained.recorder, read.recorder):
        assert recorder.steps == live.steps == 6
        assert sorted(recorder.weights) == keep and recorder.nearest_kept_step(4) == 3
        assert recorder.recording.keys() == live.recording.keys()
        for name, module in make_mlp(**BN_MODEL).named_modules():
            if not isinstance(module, torch.nn.BatchNorm1d):
                continue
            stored, original = recorder.recording[name], live.recording[name]
            for field in recorded_run.RECORDING_FIELDS:
                assert torch.equal(getattr(stored, field), getattr(original, field))
            running_mean, running_var = replay_running_stats(stored.mean, stored.var, module.momentum)
            buffers = live_model.get_submodule(name)
            torch.testing.assert_close(running_mean[-1].float(), buffers.running_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(running_var[-1].float(), buffers.running_var, rtol=1e-5, atol=1e-6)
        for step in keep:
            assert_same_model(live.model_at(step), recorder.model_at(step))


def test_recording_keeps_the_checkpoint_steps_by_default(tiny_data, tmp_path):
    run = recorded(tiny_data, tmp_path)
    assert isinstance(run, runs.CachedRun) and len(run.history.minibatch_loss) == 6
    assert sorted(run.recorder.weights) == checkpoint_steps(100 // 32, 2)
    with pytest.raises(TypeError, match="finished"):
        run.recorder.__enter__()


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
    run(tiny_data, tmp_path)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("make_mlp(hidden=[8, 6], bn='before', dropout=0.25), seed 7, 2 epochs: read from the run")
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


def test_the_model_key_draws_no_random_numbers():
    seed_everything(5)
    before = random_states()
    key = runs.mlp_spec({"bn": "before", "init_std": 0.1}).key()
    assert_same_random_states(before, random_states())
    assert key["structure"] == str(make_mlp(bn="before", init_std=0.1))
    assert key["factory"] == "bnlib.models.make_mlp" and key["arguments"]["hidden"] == [75, 45]
    assert runs.mlp_spec({"hidden": [75, 45], "dropout": 0}).key() == runs.mlp_spec({}).key()


def test_the_optimizer_key():
    assert runs.sgd_key(1) == {"name": "SGD", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}
    with pytest.raises(ValueError, match="learning_rate must be a number in"):
        runs.sgd_key(-0.1)


@pytest.mark.parametrize("learning_rate", [0.1, 1, 2.5])
def test_the_optimizer_key_describes_what_sgd_builds(learning_rate):
    optimizer = sgd(nn.Linear(3, 2).parameters(), learning_rate)
    group = optimizer.param_groups[0]
    described = {"name": type(optimizer).__name__, **{name: group[name] for name in ("lr", "momentum", "weight_decay")}}
    assert runs.sgd_key(learning_rate) == described
    plain = torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=learning_rate).param_groups[0]
    assert {**group, "params": None} == {**plain, "params": None}  # every other setting at torch's default
    with pytest.raises(ValueError, match="learning_rate must be a number in"):
        sgd(nn.Linear(3, 2).parameters(), 0)


def test_describe_names_the_arguments_that_are_not_defaults():
    assert runs.mlp_spec({}).describe() == "make_mlp()"
    assert runs.describe_run(runs.mlp_spec({"bn": "after", "hidden": (8,)}), "seed 1") == (
        "make_mlp(hidden=[8], bn='after'), seed 1"
    )


def make_cnn(channels, num_classes=10):
    """A small CNN: what the recipe must fit besides the MLP."""
    return nn.Sequential(nn.Conv2d(1, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(channels, num_classes))  # fmt: skip


def test_the_recipe_fits_another_model(tiny_data, tmp_path):
    model = runs.ModelSpec(make_cnn, {"channels": 4})
    key = runs.run_key("one epoch", model, 0.1, seed=3, batch_size=20)
    assert key["optimizer"] == runs.sgd_key(0.1) and key["seed"] == 3 and "Conv2d" in key["model"]["structure"]

    def compute():
        trained = model.build(seed=3)
        optimizer = torch.optim.SGD(trained.parameters(), lr=0.1)
        train_one_epoch(trained, lecture_loaders(tiny_data, 20, 3)[0], optimizer, "cpu")
        return {"steps": 5}, runs.stored_tensors(trained, {"extra": torch.ones(2)})

    first, again = (runs.cached_run(key, model, compute, data=tiny_data, device="cpu", description="a CNN",
                                    cache_dir=tmp_path, verbose=False) for _ in range(2))  # fmt: skip
    assert (first.cached, again.cached) == (False, True) and again.record == {"steps": 5}
    assert isinstance(again.model[1], nn.BatchNorm2d) and not again.model.training
    assert_same_model(first.model, again.model)
    assert again.model[1].num_batches_tracked == 5 and torch.equal(again.tensors["extra"], torch.ones(2))
    with pytest.raises(AttributeError, match="no history"):
        again.history  # noqa: B018
