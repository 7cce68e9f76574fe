"""Robustness sweeps: the lecture's MLP with and without BatchNorm over learning rates and initialization scales.

Each run trains a fixed number of epochs with SGD through the run cache. A run whose loss becomes
non-finite or exceeds 10 x its first value stops there and is recorded as diverged (a result, not
an error). Each setting of a network is then classified over its seeds (`classify_settings`):
"diverged" when any seed diverged, "trains" when every seed reaches 90 % test accuracy, "at chance"
when every seed stays below 20 % (ten digits: guessing scores about 10 %), else "in between".
"""

import math

import pandas as pd
import torch

from bnlib.checks import check_integer
from bnlib.data import TensorLoader, training_loader
from bnlib.runs import cached_run, describe_run, mlp_spec, run_key, stored_tensors
from bnlib.runtime import resolve_device
from bnlib.train import DIVERGENCE_FACTOR, DivergenceCheck, compute_accuracy, evaluation_mode, sgd, train_steps

TRAINS_AT_ACCURACY = 90.0  # percent test accuracy
AT_CHANCE_BELOW = 20.0  # percent test accuracy: ten classes, so guessing (or always one digit) scores about 10 %
CLASSES = ("trains", "at chance", "diverged", "in between")  # what `classify_settings` calls a setting
NETWORKS = {"no BatchNorm": {}, "BatchNorm": {"bn": "before"}}  # the lecture's 784-75-45-10 ReLU MLP
PROCEDURE = (f"SGD for a fixed number of epochs, stopped when the loss exceeds {DIVERGENCE_FACTOR:g} x its first "
             "value or is not finite")


def train_until_diverged(model, data, *, num_epochs, batch_size, learning_rate, seed, device):
    """Train with SGD for `num_epochs`, stopping at divergence; (record, tensors) with `diverged` and test accuracy.

    `test_accuracy` (percent, eval mode) is None for a diverged run: its weights are no longer numbers to judge.
    """
    model.to(device)
    loader = training_loader(data.train, batch_size, seed, device)
    check = DivergenceCheck()
    optimizer = sgd(model.parameters(), learning_rate)
    history = train_steps(model, loader, optimizer, num_epochs * len(loader), device=device, on_step=check)
    diverged = check.diverged_at is not None
    accuracy = None
    if not diverged:
        with evaluation_mode(model):
            accuracy = compute_accuracy(model, TensorLoader(*data.test, 2_000, device=device), device)
    last_loss = history.minibatch_loss[-1]
    record = {
        "diverged": diverged,
        "steps_trained": len(history.minibatch_loss),
        "first_loss": history.minibatch_loss[0],
        "last_loss": last_loss if math.isfinite(last_loss) else None,  # JSON has no NaN or infinity
        "test_accuracy": accuracy,
    }
    return record, stored_tensors(model)


def sweep_run(model_options, data, *, learning_rate, seed, num_epochs, batch_size, device=None, cache_dir=None):
    """One sweep run of `make_mlp(**model_options)`: a CachedRun, read from the run cache or trained."""
    device = resolve_device(device)
    model = mlp_spec(model_options)
    settings = {"num_epochs": check_integer("num_epochs", num_epochs, minimum=1),
                "batch_size": check_integer("batch_size", batch_size, minimum=1),
                "seed": check_integer("seed", seed, minimum=0)}  # fmt: skip
    key = run_key(PROCEDURE, model, learning_rate, **settings)

    def compute():
        return train_until_diverged(model.build(seed), data, learning_rate=learning_rate, device=device, **settings)

    return cached_run(key, model, compute, data=data, device=device, cache_dir=cache_dir, verbose=False,
                      description=describe_run(model, f"lr {learning_rate:g}", f"seed {seed}"))  # fmt: skip


def sweep_table(settings, data, *, num_epochs, batch_size, device=None, cache_dir=None):
    """A DataFrame with one row per run for `settings`, an iterable of dicts with keys network, model_options,
    learning_rate, seed (and any others, kept as columns); adds diverged, test_accuracy, trains, cached."""
    rows = []
    for setting in settings:
        run = sweep_run(setting["model_options"], data, learning_rate=setting["learning_rate"],
                          seed=setting["seed"], num_epochs=num_epochs, batch_size=batch_size, device=device,
                          cache_dir=cache_dir)
        accuracy = run.record["test_accuracy"]
        rows.append({**{key: value for key, value in setting.items() if key != "model_options"},
                     "diverged": run.record["diverged"], "steps_trained": run.record["steps_trained"],
                     "test_accuracy": math.nan if accuracy is None else accuracy,
                     "trains": accuracy is not None and accuracy >= TRAINS_AT_ACCURACY, "cached": run.cached})
    return pd.DataFrame(rows)


def learning_rate_sweep(learning_rates, data, *, seeds, num_epochs, batch_size, device=None, cache_dir=None):
    """Both NETWORKS at every learning rate and seed (PyTorch's default initialization); one row per run."""
    settings = ({"network": name, "model_options": options, "learning_rate": float(rate), "seed": seed}
                for name, options in NETWORKS.items() for rate in learning_rates for seed in seeds)
    return sweep_table(settings, data, num_epochs=num_epochs, batch_size=batch_size, device=device,
                       cache_dir=cache_dir)


def initialized(model_options, init_std):
    """`model_options` with every Linear weight drawn from N(0, init_std²) and every bias zero."""
    return {**model_options, "init_std": float(init_std), "zero_bias": True}


def initialization_sweep(init_stds, data, *, learning_rate, seeds, num_epochs, batch_size, device=None,
                         cache_dir=None):
    """Both NETWORKS with weights from N(0, init_std²) and zero biases, at one learning rate; one row per run."""
    settings = ({"network": name, "model_options": initialized(options, std), "init_std": float(std),
                 "learning_rate": learning_rate, "seed": seed}
                for name, options in NETWORKS.items() for std in init_stds for seed in seeds)
    return sweep_table(settings, data, num_epochs=num_epochs, batch_size=batch_size, device=device,
                       cache_dir=cache_dir)


def sweep_summary(table, column):
    """Per (network, value of `column`): mean test accuracy over seeds (NaN when any seed diverged), and how many
    runs diverged and how many trained (reached 90 %)."""
    grouped = table.groupby(["network", column], sort=False)
    return pd.DataFrame({
        "mean test accuracy (%)": grouped["test_accuracy"].apply(lambda accuracy: accuracy.mean(skipna=False)),
        "runs diverged": grouped["diverged"].sum(),
        "runs that train": grouped["trains"].sum(),
    })


def classify_settings(table, column):
    """{network: {class: sorted values of `column`}} for each class of CLASSES, judged over a setting's seeds:
    "diverged" when any seed diverged (one is enough to mark the setting), else "trains" when every seed
    reaches TRAINS_AT_ACCURACY, "at chance" when every seed stays below AT_CHANCE_BELOW, else "in between"."""
    grouped = table.groupby(["network", column], sort=False)
    diverged, accuracy = grouped["diverged"].any(), grouped["test_accuracy"]
    trains = accuracy.apply(lambda values: bool((values >= TRAINS_AT_ACCURACY).all()))
    at_chance = accuracy.apply(lambda values: bool((values < AT_CHANCE_BELOW).all()))
    classes = {}
    for network in table["network"].unique():
        found = {name: [] for name in CLASSES}
        for value in sorted(diverged[network].index):
            name = ("diverged" if diverged[network, value] else "trains" if trains[network, value]
                    else "at chance" if at_chance[network, value] else "in between")  # fmt: skip
            found[name].append(value)
        classes[network] = found
    return classes


def classification_rule(num_epochs):
    """The rule of `classify_settings` in words, for a sweep of `num_epochs` epochs per run."""
    epochs = f"{num_epochs} epoch{'s' if num_epochs != 1 else ''}"
    return (f"trains: every seed reaches {TRAINS_AT_ACCURACY:g} % test accuracy in {epochs}; at chance: every "
            f"seed stays below {AT_CHANCE_BELOW:g} %; diverged: at least one seed's loss became non-finite or "
            f"exceeded {DIVERGENCE_FACTOR:g} x its first value; in between: the rest")


def initial_output_std(model_options, images, seed):
    """The standard deviation of the logits of `make_mlp(**model_options)` as built from `seed`, before any
    training, on `images` (train mode: BatchNorm normalizes with their batch statistics), over images and classes."""
    model = mlp_spec(model_options).build(check_integer("seed", seed, minimum=0)).train()
    with torch.no_grad():
        return model(images).std().item()


def describe_values(values, empty, prefix=""):
    """The grid values a sentence names: `prefix` then 'a, b, c' (each with :g), or `empty` when there are none."""
    return prefix + ", ".join(f"{value:g}" for value in values) if values else empty
