"""The lecture's standard run through the run cache: an MLP trained with SGD, seeded as the notebooks seed it.

A run is stored as its history (JSON), its final weights and, when recorded, the per-step batch
statistics and kept weights of every BatchNorm layer, so that a notebook reading it from the cache
gets the same model, numbers and recording as one that trains it.
"""

import random
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnlib.cache import cached
from bnlib.checks import check_integer, check_number
from bnlib.data import TensorLoader
from bnlib.models import count_parameters, make_mlp, mlp_arguments
from bnlib.runtime import device as best_device
from bnlib.runtime import seed_everything
from bnlib.stats.recording import BatchStatsRecorder, LayerRecording, checkpoint_steps
from bnlib.train import History, train_model

PROCEDURE = "train_mlp"
RECORDING_FIELDS = ("mean", "var", "batch_size")  # the tensors of a LayerRecording


@dataclass
class TrainedRun:
    """A finished run: the trained model (eval mode), its History, its recorder when recorded, and its source."""

    model: nn.Module
    history: History
    recorder: BatchStatsRecorder | None
    cached: bool  # True: read from the run cache, not trained in this call


class StoredRecorder(BatchStatsRecorder):
    """A finished recording read back from the cache: the live recorder's `recording`, `steps`, `weights`,
    `model_at` and `nearest_kept_step`, for a model that no longer trains."""

    def __init__(self, model, recording, weights):
        super().__init__(model)
        self._recording = recording
        self.weights = weights  # step -> state_dict on the CPU

    def __enter__(self):
        raise TypeError("a recording read from the cache is finished; record a new run with BatchStatsRecorder")

    @property
    def recording(self):
        return self._recording

    @property
    def steps(self):
        return len(next(iter(self._recording.values())).mean)


def model_key(model_options):
    """What decides the model: every `make_mlp` argument resolved, and the model's structure as text."""
    with preserved_random_state():  # building the model draws its initial weights
        structure = str(make_mlp(**model_options))
    return {"arguments": mlp_arguments(**model_options), "structure": structure}


def run_config(model_options, *, seed, num_epochs, batch_size, learning_rate, keep_weights_at=None):
    """Everything of a run that decides its result, as a JSON-ready dict (the cache adds data, device, versions)."""
    return {
        "procedure": PROCEDURE,
        "model": model_key(model_options),
        "seed": check_integer("seed", seed, minimum=0),
        "num_epochs": check_integer("num_epochs", num_epochs, minimum=1),
        "batch_size": check_integer("batch_size", batch_size, minimum=1),
        "optimizer": {"name": "SGD", "lr": learning_rate, "momentum": 0.0, "weight_decay": 0.0},
        "recording": None if keep_weights_at is None else {"keep_weights_at": sorted(map(int, keep_weights_at))},
    }


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


def lecture_loaders(data, batch_size, seed, device=None):
    """Train (shuffled by `seed`, last partial batch dropped), valid and test loaders over `data`, as the notebooks'."""
    return (
        TensorLoader(*data.train, batch_size, shuffle=True, seed=seed, drop_last=True, device=device),
        TensorLoader(*data.valid, batch_size, device=device),
        TensorLoader(*data.test, batch_size, device=device),
    )


def train_mlp(model_options, *, seed, num_epochs, batch_size, learning_rate, data, device,
              keep_weights_at=None, on_epoch=None, progress=True):  # fmt: skip
    """(record, tensors) of one run: `seed` sets the initial weights, the shuffle order and the dropout masks.

    record: {"history", "num_params", "interrupted"}; tensors: "model/<name>" (final state_dict) and,
    with `keep_weights_at`, "recording/<layer>/<mean|var|batch_size>" and "weights/<step>/<name>".
    """
    seed_everything(seed)  # initial weights, as the notebooks seed them
    model = make_mlp(**model_options)
    loaders = lecture_loaders(data, batch_size, seed, device)
    recorder = None if keep_weights_at is None else BatchStatsRecorder(model, keep_weights_at)
    with recorder or nullcontext():
        history = train_model(model, num_epochs, *loaders, learning_rate=learning_rate, device=device, seed=seed,
                              progress=progress, on_batch=recorder, on_epoch=on_epoch)  # fmt: skip
    record = {"history": history.to_dict(), "num_params": count_parameters(model), "interrupted": history.interrupted}
    tensors = _prefixed("model", model.state_dict())
    if recorder is not None:
        for name, layer in recorder.recording.items():
            tensors |= {f"recording/{name}/{field}": getattr(layer, field) for field in RECORDING_FIELDS}
        for step, state in recorder.weights.items():
            tensors |= _prefixed(f"weights/{step}", state)
    return record, tensors


def _prefixed(prefix, state):
    return {f"{prefix}/{name}": tensor for name, tensor in state.items()}


def _under(tensors, prefix):
    """{rest of the name: tensor} for the tensors named `prefix/...`."""
    return {name[len(prefix) + 1 :]: tensor for name, tensor in tensors.items() if name.startswith(prefix + "/")}


def _stored_recorder(model, tensors):
    layers = {}
    for name, tensor in _under(tensors, "recording").items():
        layer, field = name.rsplit("/", 1)
        layers.setdefault(layer, {})[field] = tensor
    weights = {}
    for name, tensor in _under(tensors, "weights").items():
        step, key = name.split("/", 1)
        weights.setdefault(int(step), {})[key] = tensor
    recording = {layer: LayerRecording(**fields) for layer, fields in layers.items()}
    return StoredRecorder(model, recording, dict(sorted(weights.items())))


def _describe(model_options, seed, num_epochs, record):
    options = ", ".join(f"{name}={value!r}" for name, value in model_options.items())
    return f"make_mlp({options}), seed {seed}, {num_epochs} epochs" + (", recorded" if record else "")


def train_mlp_run(model_options, *, seed, num_epochs, batch_size, learning_rate, data, device=None, record=False,
                  keep_weights_at=None, on_epoch=None, cache_dir=None, description=None):  # fmt: skip
    """The lecture's run of `make_mlp(**model_options)` (SGD, `learning_rate`), read from the run cache or trained.

    With `record`, the run is recorded (`keep_weights_at` defaults to `checkpoint_steps`) and the
    TrainedRun's recorder offers the live recorder's read-out. `on_epoch` (for example
    `bnlib.widgets.live.live_curves()`) is called only when training for real. The global random state is
    left as it was, whether the run was trained or read, so later cells give the same numbers.
    """
    check_number("learning_rate", learning_rate, 0, None, low_open=True)
    device = torch.device(device) if device is not None else best_device()
    if record and keep_weights_at is None:
        keep_weights_at = checkpoint_steps(len(data.train[1]) // batch_size, num_epochs)
    keep = keep_weights_at if record else None
    config = run_config(model_options, seed=seed, num_epochs=num_epochs, batch_size=batch_size,
                        learning_rate=learning_rate, keep_weights_at=keep)  # fmt: skip

    def compute():
        return train_mlp(model_options, seed=seed, num_epochs=num_epochs, batch_size=batch_size, data=data,
                         learning_rate=learning_rate, device=device, keep_weights_at=keep, on_epoch=on_epoch,
                         progress=on_epoch is None)  # fmt: skip

    with preserved_random_state():
        entry = cached(config, compute, data=data, device=device, cache_dir=cache_dir,
                       description=description or _describe(model_options, seed, num_epochs, record))  # fmt: skip
        model = make_mlp(**model_options)
    model.load_state_dict(_under(entry.tensors, "model"))
    model.to(device).eval()
    recorder = _stored_recorder(model, entry.tensors) if record else None
    return TrainedRun(model, History(**entry.record["history"]), recorder, entry.cached)
