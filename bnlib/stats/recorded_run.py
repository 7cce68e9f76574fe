"""Notebook 04's recorded run: the lecture's run (`bnlib.runs`) with every BatchNorm layer's batch statistics
recorded at every step and the weights kept at checkpoint steps, stored in the run cache with the run.

Read back, the recording is a finished recorder with the live one's read-out, so a notebook reading the
run from the cache gets the same model, numbers and recording as one that trains it.
"""

from dataclasses import dataclass

from bnlib.checks import check_integer
from bnlib.runs import CachedRun, lecture_run, mlp_spec, prefixed, tensors_under
from bnlib.stats.recording import BatchStatsRecorder, LayerRecording, checkpoint_steps

RECORDING_FIELDS = ("mean", "var", "batch_size")  # the tensors of a LayerRecording


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


@dataclass(frozen=True)
class BatchStatsRecording:
    """What to record in a lecture run (`bnlib.runs.train_lecture_run`'s `recording`): the batch statistics of every
    BatchNorm layer at every step, and the weights at the steps `keep_weights_at`."""

    keep_weights_at: tuple

    def key(self):
        """Its part of the run's cache key."""
        return {"keep_weights_at": sorted(map(int, self.keep_weights_at))}

    def start(self, model):
        """The recorder of `model`'s training: a context manager and an `on_batch` callback."""
        return BatchStatsRecorder(model, self.keep_weights_at)

    def tensors(self, recorder):
        """What the run cache stores of a finished `recorder`: "recording/<layer>/<field>", "weights/<step>/<name>"."""
        tensors = {}
        for name, layer in recorder.recording.items():
            tensors |= {f"recording/{name}/{field}": getattr(layer, field) for field in RECORDING_FIELDS}
        for step, state in recorder.weights.items():
            tensors |= prefixed(f"weights/{step}", state)
        return tensors

    def read_back(self, model, tensors):
        """The StoredRecorder of `model` from the tensors that `tensors` stored."""
        layers, weights = {}, {}
        for name, tensor in tensors_under(tensors, "recording").items():
            layer, field = name.rsplit("/", 1)
            layers.setdefault(layer, {})[field] = tensor
        for name, tensor in tensors_under(tensors, "weights").items():
            step, key = name.split("/", 1)
            weights.setdefault(int(step), {})[key] = tensor
        recording = {layer: LayerRecording(**fields) for layer, fields in layers.items()}
        return StoredRecorder(model, recording, dict(sorted(weights.items())))


@dataclass
class RecordedRun(CachedRun):
    """A CachedRun with its recording: `recorder` offers the live recorder's read-out (steps, recording, weights,
    model_at, nearest_kept_step)."""

    recorder: StoredRecorder


def record_mlp_run(model_options, *, seed, num_epochs, batch_size, learning_rate, data, device=None,
                   keep_weights_at=None, on_epoch=None, cache_dir=None, description=None):  # fmt: skip
    """The lecture's run of `make_mlp(**model_options)`, recorded: a RecordedRun, read from the run cache or trained.

    `keep_weights_at` defaults to `checkpoint_steps` of the run; `on_epoch` is called only when training.
    The global random state is left as it was, whether the run was trained or read.
    """
    if keep_weights_at is None:
        steps_per_epoch = len(data.train[1]) // check_integer("batch_size", batch_size, minimum=1)
        keep_weights_at = checkpoint_steps(steps_per_epoch, check_integer("num_epochs", num_epochs, minimum=1))
    recording = BatchStatsRecording(tuple(keep_weights_at))
    run = lecture_run(mlp_spec(model_options), seed=seed, num_epochs=num_epochs, batch_size=batch_size,
                      learning_rate=learning_rate, data=data, device=device, recording=recording, on_epoch=on_epoch,
                      cache_dir=cache_dir, description=description)  # fmt: skip
    return RecordedRun(**vars(run), recorder=recording.read_back(run.model, run.tensors))
