"""bnlib.train: determinism, interruption, modes and the history it returns."""

import pytest
import torch

from bnlib import seed_everything, settings
from bnlib.data import TensorLoader
from bnlib.models import make_mlp
from bnlib.train import History, compute_accuracy, evaluation_mode, train_model, train_one_epoch


def small_loaders(mnist, seed, count=2048):
    images, labels = mnist.split("train", count)
    train = TensorLoader(images, labels, 128, shuffle=True, seed=seed, drop_last=True)
    valid = TensorLoader(*(tensor[:512] for tensor in mnist.valid), 256)
    return train, valid


def run(mnist, seed, num_epochs=2, **kwargs):
    seed_everything(seed)
    model = make_mlp(bn="before", dropout=0.5)
    train, valid = small_loaders(mnist, seed)
    history = train_model(model, num_epochs, train, valid, valid, seed=seed, progress=False, device="cpu", **kwargs)
    return model, history


def test_same_seed_gives_identical_runs(mnist):
    _, first = run(mnist, seed=5)
    _, again = run(mnist, seed=5)
    _, other = run(mnist, seed=6)
    assert first.minibatch_loss == again.minibatch_loss
    assert (first.train_acc, first.valid_acc, first.test_acc) == (again.train_acc, again.valid_acc, again.test_acc)
    assert first.minibatch_loss != other.minibatch_loss


def test_history_shape_and_final_eval_mode(mnist):
    steps = []
    model, history = run(mnist, seed=1, on_batch=lambda model, step: steps.append((model.training, step)))
    assert len(history.minibatch_loss) == 2 * 16 and steps == [(True, step) for step in range(1, 33)]
    assert len(history.train_acc) == len(history.valid_acc) == len(history.epoch_seconds) == 2
    assert all(0 <= acc <= 100 for acc in history.train_acc + history.valid_acc)
    assert history.valid_acc[-1] > 50  # it learns: chance is 10 %
    assert not model.training and not history.interrupted
    assert history.test_acc == pytest.approx(compute_accuracy(model, small_loaders(mnist, 1)[1]))


def test_ctrl_c_returns_the_history_so_far(mnist):
    def interrupt(model, step):
        if step == 20:  # in the second epoch
            raise KeyboardInterrupt

    model, history = run(mnist, seed=1, num_epochs=5, on_batch=interrupt)
    assert history.interrupted and len(history.minibatch_loss) == 20
    assert len(history.train_acc) == 1  # the finished epoch is kept
    assert history.test_acc is None and not model.training


def test_learning_rate_sets_the_default_sgd(mnist):
    seed_everything(2)
    model = make_mlp(bn="before", dropout=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    train, valid = small_loaders(mnist, 2)
    explicit = train_model(model, 1, train, valid, seed=2, progress=False, device="cpu", optimizer=optimizer)
    _, by_rate = run(mnist, seed=2, num_epochs=1, learning_rate=0.05)
    _, default = run(mnist, seed=2, num_epochs=1)
    assert by_rate.minibatch_loss == explicit.minibatch_loss
    assert by_rate.minibatch_loss[1:] != default.minibatch_loss[1:]  # the first loss comes before any step


def test_on_epoch_sees_each_finished_epoch(mnist):
    seen = []
    _, history = run(mnist, seed=1, num_epochs=3, on_epoch=lambda history, num_epochs: seen.append(
        (len(history.train_acc), len(history.valid_acc), len(history.epoch_seconds), num_epochs)))
    assert seen == [(1, 1, 1, 3), (2, 2, 2, 3), (3, 3, 3, 3)]
    assert history.test_acc is not None  # evaluated after the last on_epoch


def test_train_one_epoch_defaults(mnist):
    seed_everything(4)
    model = make_mlp(hidden=(16,))
    train, _ = small_loaders(mnist, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert train_one_epoch(model, train, optimizer, "cpu") == len(train)  # counts from 0, records nothing
    history = History()
    assert train_one_epoch(model, train, optimizer, "cpu", step=len(train), history=history) == 2 * len(train)
    assert len(history.minibatch_loss) == len(train)


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"num_epochs": 0}, "num_epochs"),
        ({"num_epochs": 2.0}, "num_epochs"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"logging_interval": 0}, "logging_interval"),
    ],
)
def test_bad_arguments_name_the_parameter(arguments, parameter):
    arguments = {"num_epochs": 1, **arguments}
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        train_model(make_mlp(), train_loader=[], valid_loader=[], **arguments)


def test_compute_accuracy_counts_correct_predictions():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    logits = torch.eye(4).reshape(4, 4)  # predicts its own index
    loader = TensorLoader(logits, torch.tensor([0, 1, 2, 0]), 3)
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1)))
    assert compute_accuracy(model, loader) == 75.0


@pytest.mark.parametrize(("value", "quick"), [("1", True), ("yes", True), (" TRUE ", True), ("0", False), ("", False)])
def test_settings_read_quick_mode_from_the_environment(monkeypatch, value, quick):
    monkeypatch.setenv("BNLIB_QUICK", value)
    assert settings().quick is quick
    assert settings() == settings(quick=quick)  # the environment only picks the preset
    assert settings(quick=True).num_epochs < settings(quick=False).num_epochs
    assert settings(quick=True).num_seeds >= 2  # the placement grid needs a spread


def test_settings_one_grid_worker_per_core_at_most_four(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert settings().workers == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert settings().workers == 2


def test_final_numbers_read_the_end_of_the_history():
    history = History(train_acc=[90.0, 99.5], valid_acc=[89.0, 97.0], epoch_seconds=[2.0, 4.0], test_acc=97.25)
    assert history.final_numbers() == {"final_train_acc": 99.5, "final_valid_acc": 97.0, "test_acc": 97.25,
                                       "train_test_gap": 2.25, "seconds_per_epoch": 3.0, "epochs": 2}  # fmt: skip
    unfinished = History(train_acc=[50.0], valid_acc=[40.0], epoch_seconds=[1.0], interrupted=True)
    assert unfinished.final_numbers()["test_acc"] is None and unfinished.final_numbers()["train_test_gap"] is None


def test_evaluation_mode_gives_every_module_its_own_mode_back():
    model = make_mlp((4,), bn="before", dropout=0.5).train()
    model[2].eval()  # a BatchNorm kept in eval mode by hand inside a training model
    with evaluation_mode(model):
        assert not any(module.training for module in model.modules())
    assert [module.training for module in model] == [True, True, False, True, True, True]
