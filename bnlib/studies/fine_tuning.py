"""Fine-tuning a pretrained BatchNorm MLP on a shifted domain, with three ways of freezing it, through the run cache.

Only the output layer is meant to train in the two freezing choices. `requires_grad_(False)`
alone (the naive freeze) stops gamma and beta, but `model.train()` puts BatchNorm back in train
mode, so it normalizes with the new domain's batch statistics and its running statistics move
to them; `freeze_batchnorm` keeps the pretrained statistics.
"""

import copy
import functools

import torch.nn.functional as F

from bnlib.checks import check_choice, check_integer
from bnlib.data import training_loader
from bnlib.models import freeze_batchnorm, output_layer
from bnlib.runs import ModelSpec, cached_run, describe_run, run_key, stored_tensors
from bnlib.runtime import model_device, resolve_device, seed_everything
from bnlib.stats.batchnorm import first_batchnorm
from bnlib.studies.shift import shift_images, shifted_accuracy
from bnlib.train import sgd, train_one_epoch

PROCEDURE = "fine_tune"
FREEZE_CHOICES = ("naive freeze", "BatchNorm frozen", "full fine-tuning")


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
