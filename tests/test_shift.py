"""Shift transforms, and which shifts re-estimated statistics absorb in a Linear + BatchNorm model."""

import copy

import pytest
import torch

from bnlib.data import MNISTSplits, TensorLoader, first_images
from bnlib.models import make_mlp
from bnlib.stats.batchnorm import with_per_batch_statistics
from bnlib.stats.population import recalibrate
from bnlib.studies.shift import (
    SHIFTS,
    STATISTICS_SOURCES,
    ShiftedBatches,
    accuracy_by_statistics,
    add_noise,
    brighten,
    invert,
    lower_contrast,
    shift_images,
    shifted_accuracy,
)
from bnlib.train import compute_accuracy


@pytest.fixture
def images():
    return torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_transforms(images):
    torch.testing.assert_close(lower_contrast(images, 0.5), 0.5 * images + 0.25)
    assert lower_contrast(images, 0.5).min() >= 0.25 and lower_contrast(images, 0.5).max() <= 0.75
    torch.testing.assert_close(brighten(images, 0.3), images + 0.3)  # not clipped
    torch.testing.assert_close(invert(images), 1 - images)
    torch.testing.assert_close(add_noise(images, 0.3, seed=5), add_noise(images, 0.3, seed=5))
    assert not torch.equal(add_noise(images, 0.3, seed=5), add_noise(images, 0.3, seed=6))
    noise = add_noise(images, 0.3, seed=5) - images
    assert 0.28 < noise.std().item() < 0.32
    assert torch.equal(shift_images(images, "clean"), images)


def test_bad_arguments(images):
    with pytest.raises(ValueError, match="shift must be one of .*'inverted'.*, got 'rotated'"):
        shift_images(images, "rotated")
    with pytest.raises(ValueError, match="gain must be a number in \\(0, inf\\), got -1"):
        lower_contrast(images, -1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2, got 1"):
        accuracy_by_statistics(make_mlp(bn="before"), None, "clean", batch_size=1)


def _recalibrated(model, train_images, shift):
    return recalibrate(copy.deepcopy(model), TensorLoader(shift(train_images), torch.zeros(len(train_images)), 32))


def _same(images):
    return images


@pytest.mark.parametrize("bias", [False, True])  # a Linear bias is one more offset: absorbed the same way
@pytest.mark.parametrize("shift, eps", [(brighten, 1e-5), (lower_contrast, 1e-12)])
def test_affine_shift_is_absorbed_exactly_by_recalibrated_statistics(images, shift, eps, bias):
    torch.manual_seed(2)
    model = make_mlp(bn="before", bias=bias)  # Linear, then BatchNorm1d
    for layer in (model[2], model[5]):
        layer.eps = eps  # a gain scales the variance but not eps, the one term that does not follow it
    train_images, test_images = images[:48], images[48:]
    clean, shifted = _recalibrated(model, train_images, _same), _recalibrated(model, train_images, shift)
    with torch.no_grad():
        torch.testing.assert_close(shifted(shift(test_images)), clean(test_images), rtol=1e-5, atol=2e-5)
        assert (clean(shift(test_images)) - clean(test_images)).abs().max() > 0.1  # the old statistics do not


def test_inversion_is_not_absorbed(images):
    torch.manual_seed(3)
    model = make_mlp(bn="before")
    train_images, test_images = images[:48], images[48:]
    clean, inverted = _recalibrated(model, train_images, _same), _recalibrated(model, train_images, invert)
    with torch.no_grad():
        assert (inverted(invert(test_images)) - clean(test_images)).abs().max() > 0.1


def test_accuracy_by_statistics_on_a_brightness_shift(images):
    torch.manual_seed(4)
    labels = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
    data = MNISTSplits(train=(images[:48], labels[:48]), valid=None, test=(images[48:], labels[48:]), source="test")
    model = make_mlp(bn="before").eval()
    before = copy.deepcopy(model.state_dict())
    clean = accuracy_by_statistics(model, data, "clean", batch_size=16)
    bright = accuracy_by_statistics(model, data, "brightness +0.3", batch_size=16)
    assert tuple(bright) == STATISTICS_SOURCES
    assert bright["re-estimated on shifted data"] == pytest.approx(clean["re-estimated on shifted data"])
    assert bright["each test batch's own"] == pytest.approx(clean["each test batch's own"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])  # the model is not changed
    assert set(SHIFTS) >= {"clean", "inverted"}


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_shifted_batches_are_the_whole_split_shifted(shift):
    pixels = torch.randint(0, 256, (70, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(70)
    batches = ShiftedBatches(TensorLoader(pixels, labels, 16), shift)  # 16, 16, 16, 16, 6
    assert len(batches) == 5
    for _ in range(2):  # every pass gives the same images: the noise is drawn again from its seed
        images, seen = (torch.cat(parts) for parts in zip(*batches, strict=True))
        # the same elementwise operations and, for the noise, the same draws from one seeded generator:
        # equal to the bit for MNIST-shaped images (rtol=atol=0)
        torch.testing.assert_close(images, shift_images(pixels, shift), rtol=0, atol=0)
        assert torch.equal(seen, labels)
    with pytest.raises(ValueError, match="shift must be one of"):
        ShiftedBatches(TensorLoader(pixels, labels, 16), "blurred")


def test_accuracy_by_statistics_equals_the_sources_computed_on_shifted_copies(mnist):
    torch.manual_seed(5)
    data = first_images(mnist, 600, 300)
    model = make_mlp((32,), bn="before")
    train = TensorLoader(*data.split("train"), 64, shuffle=True, seed=0, drop_last=True)
    with torch.no_grad():
        for images, _ in train:  # train-mode passes: running statistics of their own, not the initial 0 and 1
            model(images)
    model.eval()
    for shift in ("noise σ=0.3", "contrast ×0.5"):
        test = TensorLoader(shift_images(data.test[0], shift), data.test[1], 64)
        unlabelled = TensorLoader(shift_images(data.train[0], shift), data.train[1], 64)
        sources = (model, recalibrate(copy.deepcopy(model), unlabelled), with_per_batch_statistics(model))
        expected = tuple(compute_accuracy(source, test) for source in sources)
        assert tuple(accuracy_by_statistics(model, data, shift, batch_size=64).values()) == expected


def test_shifted_accuracy_is_the_accuracy_on_the_shifted_images(images):
    torch.manual_seed(0)
    model = make_mlp((16,), bn="before").eval()
    labels = torch.randint(0, 10, (len(images),))
    with torch.no_grad():
        inverted = (model(1.0 - images).argmax(1) == labels).float().mean().item() * 100
    assert shifted_accuracy(model, (images, labels), "inverted", batch_size=16) == pytest.approx(inverted, abs=1e-9)
    assert shifted_accuracy(model, (images, labels), "clean") == pytest.approx(
        (model(images).argmax(1) == labels).float().mean().item() * 100, abs=1e-9)
