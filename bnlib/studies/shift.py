"""Test images shifted the way a deployment meets them, and eval accuracy with three sources of BatchNorm statistics.

The shifts are not clipped to [0, 1]: a brightness offset or a contrast change with positive gain
is then an affine map of the pixels, which a Linear (with or without a bias) followed by BatchNorm
absorbs exactly, up to eps, once the statistics are re-estimated (the mean takes the offset, the
variance the gain). Re-estimating on unlabelled data of the new domain is AdaBN (Li et al., 2016,
"Revisiting Batch Normalization For Practical Domain Adaptation", arXiv:1603.04779).
"""

import copy

import torch

from bnlib.checks import check_choice, check_integer, check_number
from bnlib.config import BATCH_SIZE
from bnlib.data import TensorLoader, as_images
from bnlib.stats.batchnorm import with_per_batch_statistics
from bnlib.stats.population import recalibrate
from bnlib.train import compute_accuracy

STATISTICS_SOURCES = ("training statistics", "re-estimated on shifted data", "each test batch's own")


def lower_contrast(images, gain=0.5):
    """Contrast scaled by `gain` around mid-grey: gain * (x - 0.5) + 0.5, same shape."""
    check_number("gain", gain, 0, None, low_open=True)
    return gain * (images - 0.5) + 0.5


def brighten(images, offset=0.3):
    """Every pixel plus `offset`, not clipped (pixels reach 1 + offset)."""
    check_number("offset", offset)
    return images + offset


def invert(images):
    """Inverted colours, 1 - x: white digits on black become black on white."""
    return 1.0 - images


def add_noise(images, std=0.3, seed=0, generator=None):
    """Gaussian pixel noise with standard deviation `std`, drawn from `generator`, else from a new one seeded `seed`."""
    check_number("std", std, 0, None)
    if generator is None:
        generator = torch.Generator().manual_seed(check_integer("seed", seed))
    noise = torch.randn(images.shape, generator=generator).to(images.device)
    return images + std * noise


NOISE_SEED = 0
SHIFTS = {  # name -> shift(images, generator); only the noise draws from the generator
    "clean": lambda images, generator: images,
    "contrast ×0.5": lambda images, generator: lower_contrast(images),
    "brightness +0.3": lambda images, generator: brighten(images),
    "inverted": lambda images, generator: invert(images),
    "noise σ=0.3": lambda images, generator: add_noise(images, generator=generator),
}


def shift_images(images, shift):
    """`images` (float in [0, 1], or uint8 pixels, converted first) with the named shift of SHIFTS applied."""
    return SHIFTS[check_choice("shift", shift, tuple(SHIFTS))](as_images(images), _noise_generator())


def _noise_generator():
    return torch.Generator().manual_seed(NOISE_SEED)


class ShiftedBatches:
    """The (images, labels) batches of `loader` with the named `shift` (of SHIFTS) applied to each batch's images.

    It holds one shifted batch at a time, not a shifted copy of the split (for MNIST's training images
    169 MB of float32, and more while shifting). Each pass draws the noise from one generator seeded
    as `shift_images` seeds it, one batch after another.
    """

    def __init__(self, loader, shift):
        self.loader, self.shift = loader, check_choice("shift", shift, tuple(SHIFTS))

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        shift, generator = SHIFTS[self.shift], _noise_generator()
        for images, labels in self.loader:
            yield shift(images, generator), labels


def shifted_accuracy(model, split, shift, batch_size=1000, device=None):
    """Accuracy (%) of `model`, in the mode it is in, on the (images, labels) `split` shifted by `shift`."""
    return compute_accuracy(model, ShiftedBatches(TensorLoader(*split, batch_size, device=device), shift), device)


def accuracy_by_statistics(model, data, shift, batch_size=BATCH_SIZE, device=None):
    """{statistics source: eval-mode test accuracy (%)} on `data.test` shifted by `shift`.

    The sources: the model's own running statistics from training; statistics re-estimated with
    `recalibrate` on the shifted training images (their labels unused); and each test batch's
    own statistics (`track_running_stats=False`). The model itself is left unchanged.
    """
    check_integer("batch_size", batch_size, minimum=2)
    test = ShiftedBatches(TensorLoader(*data.test, batch_size, device=device), shift)
    unlabelled = ShiftedBatches(TensorLoader(*data.train, batch_size, device=device), shift)  # labels unused
    model = copy.deepcopy(model).eval()
    accuracies = (
        compute_accuracy(model, test, device),
        compute_accuracy(recalibrate(copy.deepcopy(model), unlabelled, device), test, device),
        compute_accuracy(with_per_batch_statistics(model), test, device),
    )
    return dict(zip(STATISTICS_SOURCES, accuracies, strict=True))
