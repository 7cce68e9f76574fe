"""A cached run, one recipe for all: a model from a factory, a key of everything that decides the result, the run
cache, and the trained model rebuilt from its stored weights. Also the lecture's standard run of an MLP.

A run describes its model as a ModelSpec (a factory and its resolved arguments), its configuration with
`run_key`, and its work as a `compute()` returning (record, tensors) with the trained weights under
"model/" (`stored_tensors`); `cached_run` reads it from the cache or computes it and returns a CachedRun.
The global random state is left as it was, whether the run was trained or read, so later cells give the
same numbers.
"""

import functools
import inspect
import json
import random
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnlib.cache import RETRAIN_ENV, cached, describe_folders, resolve_cache_dir
from bnlib.checks import check_integer
from bnlib.data import lecture_loaders
from bnlib.models import cnn_arguments, count_parameters, make_cnn, make_mlp, mlp_arguments
from bnlib.runtime import resolve_device, seed_everything
from bnlib.train import History, sgd_key, train_model

MODEL_PREFIX = "model"  # a run's stored tensors: the trained weights under "model/<state_dict name>"
LECTURE_PROCEDURE = "train_mlp"  # SGD for whole epochs, train and valid accuracy after each, test at the end


def factory_name(factory):
    """`module.qualname` of `factory` (of the function a functools.partial wraps): how a cache key names it."""
    function = factory.func if isinstance(factory, functools.partial) else factory
    return f"{function.__module__}.{function.__qualname__}"


def _as_json(value):
    return json.dumps(value, sort_keys=True, default=repr)


@dataclass(frozen=True)
class ModelSpec:
    """A model to build as `factory(**arguments)`, the arguments resolved (every default filled in) and JSON-ready."""

    factory: Callable[..., nn.Module]
    arguments: dict

    def build(self, seed=None):
        """The model; with `seed`, Python, NumPy and torch are seeded first (the initial weights, as notebooks do)."""
        if seed is not None:
            seed_everything(seed)
        return self.factory(**self.arguments)

    def build_on_meta(self):
        """The model on the meta device: its structure and shapes, without drawing from the global random state."""
        with torch.device("meta"):
            return self.build()

    def key(self):
        """The model's part of a cache key: factory, arguments and structure (built on the meta device)."""
        structure = str(self.build_on_meta())
        return {"factory": factory_name(self.factory), "arguments": self.arguments, "structure": structure}

    def describe(self):
        """The model as its factory call, arguments at their default left out: "make_mlp(bn='before')"."""
        defaults = inspect.signature(self.factory).parameters
        shown = [f"{name}={value!r}" for name, value in self.arguments.items()
                 if name not in defaults or _as_json(value) != _as_json(defaults[name].default)]  # fmt: skip
        return f"{factory_name(self.factory).rpartition('.')[2]}({', '.join(shown)})"


def mlp_spec(model_options):
    """The ModelSpec of `make_mlp(**model_options)`, every argument resolved; an unknown option raises TypeError."""
    return ModelSpec(make_mlp, mlp_arguments(**model_options))


def cnn_spec(model_options):
    """The ModelSpec of `make_cnn(**model_options)`, every argument resolved; an unknown option raises TypeError."""
    return ModelSpec(make_cnn, cnn_arguments(**model_options))


def run_key(procedure, model, learning_rate, **settings):
    """Everything of a run that decides its result, JSON-ready: what it does, the model, the optimizer, `settings`.

    `bnlib.cache` adds the data, the device type, torch's version and the code.
    """
    return {"procedure": procedure, "model": model.key(), "optimizer": sgd_key(learning_rate), **settings}


def describe_run(model, *details):
    """One line naming a run in the notebook and in its cache entry: the model's factory call, then `details`."""
    return ", ".join([model.describe(), *details])


def prefixed(prefix, tensors):
    """{"prefix/name": tensor} for every (name, tensor) of `tensors`."""
    return {f"{prefix}/{name}": tensor for name, tensor in tensors.items()}


def tensors_under(tensors, prefix):
    """{rest of the name: tensor} for the tensors named `prefix/...`."""
    return {name[len(prefix) + 1 :]: tensor for name, tensor in tensors.items() if name.startswith(prefix + "/")}


def stored_tensors(model, tensors=None):
    """What a cached run stores: the trained `model`'s state_dict under "model/", and `tensors` under their names."""
    return {**prefixed(MODEL_PREFIX, model.state_dict()), **(tensors or {})}


@dataclass
class CachedRun:
    """A finished run: the trained model (eval mode, on the run's device), its record, its other stored tensors,
    whether it was read from the run cache, and its cache key."""

    model: nn.Module
    record: dict
    tensors: dict  # name -> tensor on the CPU, besides the model's weights
    cached: bool  # True: read from the run cache, not computed in this call
    key: str

    @property
    def history(self):
        """The History of a run that trains for epochs (its record holds one)."""
        if "history" not in self.record:
            raise AttributeError(f"this run's record has no history, only {sorted(self.record)}")
        return History(**self.record["history"])


@contextmanager
def preserved_random_state():
    """Leave Python's, NumPy's and torch's random state as they were, whatever the block draws."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def cached_run(key, model, compute, *, data, device=None, description=None, cache_dir=None, verbose=True):
    """The CachedRun of `model` (a ModelSpec) under `key` (from `run_key`): read from the run cache, else computed.

    `compute()` returns (record, tensors) with the trained weights as `stored_tensors` makes them; the model
    comes back rebuilt from them, in eval mode on `device`. The global random state is left as it was.
    `description` names the run in the notebook and its cache entry: `describe_run(model, ...)`, by default
    `describe_run(model)`.
    """
    device = resolve_device(device)
    description = description or describe_run(model)
    with preserved_random_state():
        entry = cached(key, compute, data=data, device=device, description=description, cache_dir=cache_dir,
                       verbose=verbose)  # fmt: skip
        trained = model.build()
    trained.load_state_dict(tensors_under(entry.tensors, MODEL_PREFIX))
    others = {name: tensor for name, tensor in entry.tensors.items() if not name.startswith(MODEL_PREFIX + "/")}
    return CachedRun(trained.to(device).eval(), entry.record, others, entry.cached, entry.key)


def cache_summary(runs):
    """One line for a notebook: how many of `runs` (CachedRun) were read from the run cache, and how to retrain."""
    runs = list(runs)
    read = sum(run.cached for run in runs)
    return (f"{read} of {len(runs)} runs read from the run cache ({describe_folders(resolve_cache_dir())}), "
            f"{len(runs) - read} trained now; {RETRAIN_ENV}=1 trains them again.")  # fmt: skip


def lecture_key(model, *, seed, num_epochs, batch_size, learning_rate, recording=None):
    """The key of the lecture's run of `model` (a ModelSpec): `train_mlp_run` and the placement grid share it."""
    return run_key(
        LECTURE_PROCEDURE,
        model,
        learning_rate,
        seed=check_integer("seed", seed, minimum=0),
        num_epochs=check_integer("num_epochs", num_epochs, minimum=1),
        batch_size=check_integer("batch_size", batch_size, minimum=1),
        recording=None if recording is None else recording.key(),
    )


def lecture_description(model, seed, num_epochs, recording=None):
    """The lecture run's line in the notebook and in its cache entry."""
    return describe_run(model, f"seed {seed}", f"{num_epochs} epochs", *(["recorded"] if recording else []))


def train_lecture_run(model, *, seed, num_epochs, batch_size, learning_rate, data, device, recording=None,
                      on_epoch=None, progress=True):  # fmt: skip
    """(record, tensors) of the lecture's run of `model` (a ModelSpec): `seed` sets the initial weights, the shuffle
    order and the dropout masks. A module-level function, so the grid's worker processes can run it.

    record: {"history", "num_params", "interrupted"}; tensors: `stored_tensors`, plus what `recording` kept.
    `recording` says what to record: `recording.start(model)` makes a recorder, a context manager around
    training called as `on_batch(model, step)` after every step, and `recording.tensors(recorder)` is stored.
    """
    trained = model.build(seed)  # initial weights, as the notebooks seed them
    loaders = lecture_loaders(data, batch_size, seed, device)
    recorder = None if recording is None else recording.start(trained)
    with recorder or nullcontext():
        history = train_model(trained, num_epochs, *loaders, learning_rate=learning_rate, device=device, seed=seed,
                              progress=progress, on_batch=recorder, on_epoch=on_epoch)  # fmt: skip
    record = {"history": history.to_dict(), "num_params": count_parameters(trained), "interrupted": history.interrupted}
    return record, stored_tensors(trained, None if recorder is None else recording.tensors(recorder))


def lecture_run(model, *, seed, num_epochs, batch_size, learning_rate, data, device=None, recording=None,
                on_epoch=None, cache_dir=None, description=None):  # fmt: skip
    """The lecture's run of `model` (a ModelSpec; SGD at `learning_rate`), read from the run cache or trained.

    `recording` (see `train_lecture_run`) is stored with the run and keyed apart. `on_epoch` (for example
    `bnlib.widgets.live.live_curves()`) is called only when training for real. Returns a CachedRun.
    """
    device = resolve_device(device)
    key = lecture_key(model, seed=seed, num_epochs=num_epochs, batch_size=batch_size, learning_rate=learning_rate,
                      recording=recording)  # fmt: skip
    compute = functools.partial(train_lecture_run, model, seed=seed, num_epochs=num_epochs, batch_size=batch_size,
                                learning_rate=learning_rate, data=data, device=device, recording=recording,
                                on_epoch=on_epoch, progress=on_epoch is None)  # fmt: skip
    description = description or lecture_description(model, seed, num_epochs, recording)
    return cached_run(key, model, compute, data=data, device=device, description=description, cache_dir=cache_dir)


def train_mlp_run(model_options, *, seed, num_epochs, batch_size, learning_rate, data, device=None, on_epoch=None,
                  cache_dir=None, description=None):  # fmt: skip
    """The lecture's run of `make_mlp(**model_options)` (SGD, `learning_rate`), read from the run cache or trained.

    A CachedRun: `.model` (eval mode), `.history`, `.cached`. `on_epoch` is called only when training.
    """
    return lecture_run(mlp_spec(model_options), seed=seed, num_epochs=num_epochs, batch_size=batch_size,
                       learning_rate=learning_rate, data=data, device=device, on_epoch=on_epoch, cache_dir=cache_dir,
                       description=description)  # fmt: skip
