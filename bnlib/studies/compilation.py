"""Notebook 09, section 5: does a torch.compile'd model in train mode update BatchNorm's running statistics as
eager PyTorch does? The same few SGD steps from the same weights, eager and compiled, and their buffers compared.

"aot_eager" traces the model as torch.compile does but runs PyTorch's own kernels (seconds); "inductor" generates
and compiles C++ (or GPU) code (tens of seconds on a laptop CPU), so the comparison goes through the run cache.
"""

import copy
import functools
import shutil
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bnlib.cache import cached
from bnlib.checks import check_choice, check_integer
from bnlib.runs import prefixed, preserved_random_state, run_key, tensors_under
from bnlib.runtime import memory_limit_mb, resolve_device
from bnlib.stats.batchnorm import batchnorm_layers, unit_view
from bnlib.train import evaluation_mode, sgd

BACKENDS = ("aot_eager", "inductor")
CXX_COMPILERS = ("g++", "c++", "clang++")  # inductor's CPU code needs one of these on the PATH
# inductor builds its C++ one file at a time: each compiler process holds about 250 MB, and a class's container counts
# them all (two at once took notebook 09 from about 1.45 to 1.55 GB on 2 cores); the compile is cached afterwards.
COMPILE_THREADS = 1
# Notebook 09's kernel (1.1-1.2 GB by then) and one C++ compiler process (about 250 MB) peaked at 1.43-1.45 GB together
# from an empty inductor cache, about 1.5 GB with the Jupyter server (bench/memory.py's sum, three runs); a memory limit
# below this compiles with aot_eager instead.
INDUCTOR_MEMORY_MB = 1800
COMPILE_STEPS, COMPILE_BATCH_SIZE = 5, 64  # SGD steps compared, both modes: a few cheap updates of every buffer


def cxx_compiler():
    """The path of a C++ compiler on the PATH, or None: inductor needs one to compile for the CPU."""
    return next((path for path in map(shutil.which, CXX_COMPILERS) if path), None)


def compile_backend(quick, device=None, limit_mb=None):
    """The torch.compile backend of the notebook: "aot_eager" in quick mode, else "inductor" unless
    `why_not_inductor(device, limit_mb)` gives a reason, else "aot_eager"."""
    return "aot_eager" if quick or why_not_inductor(device, limit_mb) else "inductor"


def why_not_inductor(device=None, limit_mb=None):
    """Why full mode compiles with aot_eager here, in one line, or None: inductor needs a C++ compiler for the CPU,
    and a memory limit (`limit_mb`, default `bnlib.runtime.memory_limit_mb()`) of at least INDUCTOR_MEMORY_MB."""
    limit_mb = memory_limit_mb() if limit_mb is None else limit_mb
    if resolve_device(device).type == "cpu" and cxx_compiler() is None:
        return f"inductor needs a C++ compiler for the CPU and found none of {', '.join(CXX_COMPILERS)}"
    if limit_mb is not None and limit_mb < INDUCTOR_MEMORY_MB:
        return (f"this machine's memory limit ({limit_mb:,.0f} MB) is below {INDUCTOR_MEMORY_MB:,} MB, what we allow "
                "the kernel and inductor's C++ compiler together (they peak at about 1,500 MB)")  # fmt: skip
    return None


class CompileUnavailable(RuntimeError):
    """torch.compile cannot run here, or its backend failed to build code; the message says why, in one line."""


def compile_unavailable(backend, device=None):
    """Why torch.compile with `backend` cannot run here (one line), or None when it can. Imports torch._dynamo
    (seconds), so a comparison read from the run cache does not ask."""
    check_choice("backend", backend, BACKENDS)
    try:
        torch._dynamo.eval_frame.check_if_dynamo_supported()  # the Python versions and builds dynamo supports
    except RuntimeError as error:
        return f"torch {torch.__version__}: {error}"
    if backend == "inductor" and resolve_device(device).type == "cpu" and cxx_compiler() is None:
        return f"inductor needs a C++ compiler for the CPU and found none of {', '.join(CXX_COMPILERS)}"
    return None


def training_batches(data, steps, batch_size):
    """The first `steps` minibatches of `data`'s training split, in order: [(images (B, 1, 28, 28), labels (B,))]."""
    images, labels = data.split("train", steps * batch_size)
    if len(labels) < steps * batch_size:
        raise ValueError(f"steps * batch_size = {steps} * {batch_size} training images needed, the data has "
                         f"{len(labels)}")  # fmt: skip
    return list(zip(images.split(batch_size), labels.split(batch_size), strict=True))


def train_and_time(model, forward, batches, learning_rate, device):
    """SGD steps of `model` (train mode) through `forward` (the model, or its compiled version) on `batches`;
    the seconds of each step (the first one of a compiled model includes compiling)."""
    optimizer, seconds = sgd(model.parameters(), learning_rate), []
    model.train()
    for images, labels in batches:
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(forward(images.to(device)), labels.to(device)).backward()
        optimizer.step()
        if device.type == "cuda":  # CUDA runs asynchronously: wait for the step before reading the clock
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def values_per_statistic(model, images):
    """{BatchNorm layer name: N * H * W}, how many values each channel's batch mean and variance sum for `images`."""
    counts = {}

    def count(name):
        return lambda layer, inputs: counts.update({name: len(unit_view(inputs[0]))})

    hooks = [layer.register_forward_pre_hook(count(name)) for name, layer in batchnorm_layers(model)]
    try:
        with torch.no_grad(), evaluation_mode(model):
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def buffers_of(model):
    """{name: CPU copy} of `model`'s buffers: BatchNorm's running_mean, running_var and num_batches_tracked."""
    return {name: buffer.detach().cpu().clone() for name, buffer in model.named_buffers()}


def train_eager_and_compiled(spec, batches, *, backend, learning_rate, seed, device):
    """(record, tensors): the model of `spec` (a ModelSpec) built from `seed`, trained on `batches` eagerly and, from
    the same weights, compiled with `backend`; the buffers of both under "eager/" and "compiled/".
    CompileUnavailable where torch.compile cannot run here."""
    reason = compile_unavailable(backend, device)
    if reason is not None:
        raise CompileUnavailable(reason)
    eager = spec.build(seed).to(device)
    compiled = copy.deepcopy(eager)
    eager_seconds = train_and_time(eager, eager, batches, learning_rate, device)
    try:
        with torch._inductor.config.patch(compile_threads=COMPILE_THREADS):
            compiled_seconds = train_and_time(compiled, torch.compile(compiled, backend=backend), batches,
                                              learning_rate, device)  # fmt: skip
    except torch._dynamo.exc.BackendCompilerFailed as error:  # e.g. a C++ compiler that cannot build inductor's code
        cause = error.inner_exception  # what the backend raised
        first_line = (str(cause).strip().splitlines() or [""])[0]
        raise CompileUnavailable(f"{backend} failed: {type(cause).__name__}: {first_line}") from error
    record = {"eager_seconds": eager_seconds, "compiled_seconds": compiled_seconds,
              "values_per_statistic": values_per_statistic(eager, batches[0][0].to(device))}  # fmt: skip
    return record, {**prefixed("eager", buffers_of(eager)), **prefixed("compiled", buffers_of(compiled))}


def allowed_difference(name, eager, values_per_statistic):
    """How far the compiled run's buffer `name` may be from `eager` (the eager run's): 0 for num_batches_tracked;
    for running statistics, n * u * max|eager|, n the values per batch statistic and u float32's unit roundoff."""
    if not eager.is_floating_point():
        return 0.0
    unit_roundoff = torch.finfo(eager.dtype).eps / 2
    return values_per_statistic[name.rpartition(".")[0]] * unit_roundoff * eager.abs().max().item()


@dataclass(frozen=True)
class CompileComparison:
    """The buffers after the same SGD steps, eager and compiled, and the seconds each step took."""

    backend: str
    batch_size: int
    rows: list  # per buffer: {"buffer", "max |compiled - eager|", "allowed", "largest |value|"}
    eager_seconds: list
    compiled_seconds: list  # the first step includes compiling
    cached: bool  # read from the run cache: nothing was compiled in this call

    @property
    def within_tolerance(self):
        return all(row["max |compiled - eager|"] <= row["allowed"] for row in self.rows)

    def summary(self):
        """One line: whether every buffer agrees, and what compiling cost."""
        verdict = "every buffer within" if self.within_tolerance else "NOT every buffer within"
        largest = max(row["max |compiled - eager|"] for row in self.rows)
        later, eager = self.compiled_seconds[1:] or self.compiled_seconds, self.eager_seconds
        timing = (f"the first compiled step took {self.compiled_seconds[0]:.1f} s (compiling), later ones "
                  f"{sum(later) / len(later):.2f} s, eager ones {sum(eager) / len(eager):.2f} s"
                  + (" (read from the run cache: nothing compiled now)" if self.cached else ""))  # fmt: skip
        return (f"torch.compile(backend={self.backend!r}) vs eager after {len(eager)} SGD steps of "
                f"{self.batch_size} images: "
                f"{verdict} its allowed difference (largest difference {largest:.1e}); {timing}.")


def compare_compiled_training(spec, data, *, backend, learning_rate, seed, steps=COMPILE_STEPS,
                              batch_size=COMPILE_BATCH_SIZE, device=None, cache_dir=None, verbose=True):  # fmt: skip
    """A CompileComparison of `steps` SGD steps of `spec` (a ModelSpec) on the first training images of `data`, eager
    vs torch.compile(backend=`backend`), read from the run cache when stored (keyed by torch's version too).

    Raises CompileUnavailable (one line) where it must compile and torch.compile cannot run here. The global random
    state is left as it was.
    """
    device = resolve_device(device)
    check_choice("backend", backend, BACKENDS)
    steps, batch_size = check_integer("steps", steps, minimum=1), check_integer("batch_size", batch_size, minimum=2)
    key = run_key("compare_compiled_training", spec, learning_rate, backend=backend, steps=steps,
                  batch_size=batch_size, seed=seed)  # fmt: skip
    compute = functools.partial(train_eager_and_compiled, spec, training_batches(data, steps, batch_size),
                                backend=backend, learning_rate=learning_rate, seed=seed, device=device)  # fmt: skip
    with preserved_random_state():
        entry = cached(key, compute, data=data, device=device, cache_dir=cache_dir, verbose=verbose,
                       description=f"{spec.describe()} trained eagerly and compiled ({backend}), {steps} steps")
    eager, compiled = tensors_under(entry.tensors, "eager"), tensors_under(entry.tensors, "compiled")
    counts = entry.record["values_per_statistic"]
    rows = [{"buffer": name, "max |compiled - eager|": (compiled[name].double() - value.double()).abs().max().item(),
             "allowed": allowed_difference(name, value, counts), "largest |value|": value.abs().max().item()}
            for name, value in eager.items()]  # fmt: skip
    return CompileComparison(backend, batch_size, rows, entry.record["eager_seconds"],
                             entry.record["compiled_seconds"], entry.cached)
