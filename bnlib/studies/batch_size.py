"""One epoch per batch size, through the run cache: accuracy and statistic noise.

Small batches hurt BatchNorm twice: its statistics are noisy in training, and eval mode then
uses running statistics that differ from what training normalized with. LayerNorm and GroupNorm
normalize each example over its own units: their outputs do not depend on the other examples of the
batch, and they have neither problem.
"""

import copy
import functools

import torch

from bnlib.checks import check_integer
from bnlib.data import TensorLoader, training_loader
from bnlib.runs import cached_run, describe_run, mlp_spec, run_key, stored_tensors
from bnlib.runtime import resolve_device
from bnlib.stats.batchnorm import batchnorm_layers, unit_view
from bnlib.train import compute_accuracy, evaluation_mode, sgd, train_one_epoch

PROCEDURE = "one_epoch_per_batch_size"
NOISE_IMAGES = 10_000  # the first NOISE_IMAGES training images (file order), then shuffled into batches
NOISE_BATCHES = "shuffled (seeded), last partial batch dropped"  # how the noise's batches are drawn, for the cache key


def noise_images(data):
    """(images, labels): the training images the statistic noise is measured on, the first NOISE_IMAGES of the
    training split (all of it when it is smaller)."""
    return data.split("train", NOISE_IMAGES)


def shuffled_batches(values, batch_size, seed):
    """(num_batches, batch_size, units): the rows of `values` (N, units) in a random order drawn from `seed`, cut into
    batches, the last partial batch dropped: the way `training_loader` draws an epoch's batches."""
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed))
    usable = len(values) // batch_size * batch_size
    return values[order[:usable].to(values.device)].reshape(-1, batch_size, values.shape[1])


@torch.no_grad()
def batch_statistic_noise(model, images, batch_size, seed=0):
    """(mean noise, variance noise) of the first BatchNorm layer's statistics over shuffled batches of `images`.

    The batches: `images` in a random order drawn from `seed`, cut into batches of `batch_size`
    (`shuffled_batches`), the way training draws them; batches in file order would share whatever the
    file's order groups together. Mean noise: RMS over batches of (batch mean - mean of all `images`)
    / their std; variance noise: RMS of (unbiased batch variance / variance of all - 1); both
    averaged over units; (None, None) without BatchNorm. For independent Gaussian inputs they are
    about 1/sqrt(B) and sqrt(2/(B-1)) (a little less: the batches are drawn without replacement).
    """
    check_integer("batch_size", batch_size, minimum=2)
    check_integer("seed", seed, minimum=0)
    layers = batchnorm_layers(model)
    if not layers:
        return None, None
    seen = []
    handle = layers[0][1].register_forward_hook(lambda _module, args, _output: seen.append(unit_view(args[0])))
    try:
        with evaluation_mode(model):  # one pass over all images; the running statistics are not touched
            model(images)
    finally:
        handle.remove()
    values = seen[0].double()  # (N, units)
    batches = shuffled_batches(values, batch_size, seed)  # (batches, batch_size, units)
    mean, var = values.mean(0), values.var(0)
    mean_noise = ((batches.mean(1) - mean) / var.sqrt()).pow(2).mean(0).sqrt()  # (units,)
    var_noise = (batches.var(1) / var - 1).pow(2).mean(0).sqrt()
    return mean_noise.mean().item(), var_noise.mean().item()


def train_one_epoch_at(model, *, batch_size, seed, learning_rate, data, device):
    """(record, tensors) of one epoch of SGD of `model` (a ModelSpec) at `batch_size`.

    The record holds eval-mode and train-mode test accuracy (train mode: test batches of
    `batch_size`, as if `model.eval()` were forgotten) and the statistic noise at that size,
    on `noise_images(data)` in batches shuffled from `seed`.
    """
    model = model.build(seed).to(device)
    train = training_loader(data.train, batch_size, seed, device)
    train_one_epoch(model, train, sgd(model.parameters(), learning_rate), device)
    model.eval()
    test_images, test_labels = (tensor.to(device) for tensor in data.split("test"))
    mean_noise, var_noise = batch_statistic_noise(model, noise_images(data)[0].to(device), batch_size, seed)
    record = {
        "eval_test_acc": compute_accuracy(model, TensorLoader(test_images, test_labels, 1000), device),
        "train_mode_test_acc": compute_accuracy(
            copy.deepcopy(model).train(), TensorLoader(test_images, test_labels, batch_size)
        ),
        "mean_noise": mean_noise,
        "var_noise": var_noise,
    }
    return record, stored_tensors(model)


def one_epoch_run(model_options, *, batch_size, seed, learning_rate, data, device=None, verbose=False):
    """The CachedRun of `train_one_epoch_at` for `make_mlp(**model_options)`, read from the run cache or trained.

    Its record: eval_test_acc, train_mode_test_acc (%), mean_noise, var_noise (None without BatchNorm).
    """
    check_integer("batch_size", batch_size, minimum=2)
    device = resolve_device(device)
    model = mlp_spec(model_options)
    key = run_key(PROCEDURE, model, learning_rate, batch_size=batch_size,
                  seed=check_integer("seed", seed, minimum=0), num_epochs=1, noise_images=NOISE_IMAGES,
                  noise_batches=NOISE_BATCHES)  # fmt: skip
    compute = functools.partial(train_one_epoch_at, model, batch_size=batch_size, seed=seed,
                                learning_rate=learning_rate, data=data, device=device)  # fmt: skip
    details = f"one epoch at batch size {batch_size}"
    return cached_run(key, model, compute, data=data, device=device, description=describe_run(model, details),
                      verbose=verbose)  # fmt: skip
