"""Fine-tuning a pretrained BatchNorm MLP on a shifted domain, with three ways of freezing it, through the run cache.

Only the output layer is meant to train in the two freezing choices. `requires_grad_(False)`
alone (the naive freeze) stops gamma and beta, but `model.train()` puts BatchNorm back in train
mode, so it normalizes with the new domain's batch statistics and its running statistics move
to them; `freeze_batchnorm` keeps the pretrained statistics.

The demo's shift, lower contrast, is one that re-estimated statistics can repair: the first Linear
has no bias, so each of its units sees an affine map of what it saw on clean images (gain 0.5 and
an offset), which BatchNorm's re-estimated mean and variance undo exactly (notebook 07). Inverted
digits would not do: 1 - x flips the sign of each unit's deviation from its mean, which no
re-estimated statistic undoes.
"""

import copy
import functools
import math

import torch.nn.functional as F

from bnlib.checks import check_choice, check_integer, check_number
from bnlib.data import training_loader
from bnlib.models import freeze_batchnorm, output_layer
from bnlib.runs import ModelSpec, cached_run, describe_run, run_key, stored_tensors
from bnlib.runtime import model_device, resolve_device, seed_everything
from bnlib.stats.batchnorm import first_batchnorm
from bnlib.studies.shift import shift_images, shifted_accuracy
from bnlib.train import sgd, train_one_epoch

PROCEDURE = "fine_tune"
FREEZE_CHOICES = ("naive freeze", "BatchNorm frozen", "full fine-tuning")
FINE_TUNING_SHIFT = "contrast ×0.5"  # a name in shift.SHIFTS that re-estimated statistics repair
STANDARD_ERRORS = 2.0  # a difference is called one when it exceeds this many standard errors (about 95 %)


def compare_test_accuracies(first, second, num_images, standard_errors=STANDARD_ERRORS):
    """(first - second in points, its standard error in points, "higher" / "lower" / "within sampling error") for
    two test accuracies (%) measured on the same `num_images` test images.

    "higher" / "lower" when the difference is more than `standard_errors` standard errors from 0. The
    standard error is that of two independent binomial proportions, sqrt(p1 (1 - p1) / n + p2 (1 - p2) / n):
    the sampling of the test images only, not the seed-to-seed variation of training; when the two
    models err on the same images, the test-set part is smaller than this.
    """
    check_integer("num_images", num_images, minimum=1)
    p1, p2 = check_number("first", first, 0, 100) / 100, check_number("second", second, 0, 100) / 100
    error = 100 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / num_images)
    difference = first - second
    if abs(difference) <= standard_errors * error:
        return difference, error, "within sampling error"
    return difference, error, "higher" if difference > 0 else "lower"


def prepare_fine_tuning(model, choice):
    """Set `model` (an nn.Sequential ending in its output Linear) up for `choice`, in place; returns what trains.

    "naive freeze": requires_grad_(False) except for the output layer; "BatchNorm frozen": the same
    plus `freeze_batchnorm`; "full fine-tuning": every parameter trains, BatchNorm in train mode.
    """
    check_choice("choice", choice, FREEZE_CHOICES)
    if choice == "full fine-tuning":
        return list(model.parameters())
    model.requires_grad_(False)
    output_layer(model).requires_grad_(True)
    if choice == "BatchNorm frozen":
        freeze_batchnorm(model)
    return list(output_layer(model).parameters())


def one_training_step(model, images, labels, learning_rate):
    """One SGD step as every training loop takes it: `model.train()`, then a step on the parameters that require
    gradients. Returns whether the first BatchNorm is then in train mode and how far each of its tensors moved."""
    layer = first_batchnorm(model)
    before = {name: tensor.clone() for name, tensor in layer.state_dict().items()}
    optimizer = sgd([parameter for parameter in model.parameters() if parameter.requires_grad], learning_rate)
    model.train()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    after = layer.state_dict()
    return {"first BatchNorm in train mode": layer.training,
            **{f"max change of {name}": (after[name] - before[name]).abs().max().item() for name in before}}


def fine_tuning_start(pretrained, choice):
    """A copy of the model `pretrained`, set up for `choice` by `prepare_fine_tuning`: where fine-tuning starts."""
    model = copy.deepcopy(pretrained)
    prepare_fine_tuning(model, choice)
    return model


def fine_tune(model, choice, images, labels, *, num_epochs, batch_size, learning_rate, seed, device=None):
    """Fine-tune `model` in place on (images, labels) with SGD, frozen as `choice` says; returns it in eval mode."""
    device = model_device(model, device)
    trainable = prepare_fine_tuning(model, choice)
    loader = training_loader((images, labels), batch_size, seed, device)
    optimizer = sgd(trainable, learning_rate)
    seed_everything(seed)
    for _ in range(check_integer("num_epochs", num_epochs, minimum=1)):
        train_one_epoch(model, loader, optimizer, device)  # calls model.train(), as every training loop does
    return model.eval()


def fine_tuned_run(pretrained, choice, shift, *, data, num_labelled, num_epochs, batch_size, learning_rate, seed,
                   device=None):  # fmt: skip
    """The CachedRun of fine-tuning a copy of `pretrained` (a CachedRun, left unchanged), from the cache or trained.

    Fine-tunes on the first `num_labelled` training images under `shift` (a name in `shift.SHIFTS`);
    the pretrained run's cache key goes into this run's key. The record holds "clean_test_acc" and
    "shifted_test_acc" (%, eval mode).
    """
    check_integer("num_labelled", num_labelled, minimum=batch_size)
    device = resolve_device(device)
    choice = check_choice("choice", choice, FREEZE_CHOICES)
    model = ModelSpec(functools.partial(fine_tuning_start, pretrained.model), {"choice": choice})
    images, labels = data.split("train", num_labelled)
    images = shift_images(images, shift)
    key = run_key(PROCEDURE, model, learning_rate, pretrained=pretrained.key,
                  trains="all" if choice == "full fine-tuning" else "output layer", shift=shift,
                  num_labelled=num_labelled, num_epochs=num_epochs, batch_size=batch_size, seed=seed)  # fmt: skip

    def compute():
        tuned = fine_tune(model.build().to(device), choice, images, labels, num_epochs=num_epochs,
                          batch_size=batch_size, learning_rate=learning_rate, seed=seed, device=device)  # fmt: skip
        record = {
            "clean_test_acc": shifted_accuracy(tuned, data.test, "clean", device=device),
            "shifted_test_acc": shifted_accuracy(tuned, data.test, shift, device=device),
        }
        return record, stored_tensors(tuned)

    description = describe_run(model, f"shift {shift}", f"{num_labelled} labelled images", f"{num_epochs} epochs",
                               f"seed {seed}")  # fmt: skip
    return cached_run(key, model, compute, data=data, device=device, description=description)
