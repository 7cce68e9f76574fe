"""Statistic noise by hand, the cached one-epoch run, and why LayerNorm does not care about batch-mates."""

import pytest
import torch

from bnlib.cache import CACHE_DIR_ENV
from bnlib.models import make_mlp
from bnlib.runs import cache_summary
from bnlib.studies.batch_size import batch_statistic_noise, noise_images, one_epoch_run, shuffled_batches
from tests.support.splits import random_splits


@pytest.fixture
def tiny_data():
    return random_splits(96, 16, 32)


def test_batch_statistic_noise_by_hand_on_the_same_seeded_batches():
    torch.manual_seed(0)
    model = make_mlp((6,), bn="before").train()
    images = torch.rand(43, 1, 28, 28)
    mean_noise, var_noise = batch_statistic_noise(model, images, 8, seed=5)
    with torch.no_grad():
        values = model[1](model[0](images)).double()  # the first BatchNorm's input, (43, 6)
    order = torch.randperm(43, generator=torch.Generator().manual_seed(5))  # what a loader seeded with 5 draws
    batches = values[order[:40]].reshape(5, 8, 6)  # the last 3 shuffled images are dropped
    expected_mean = (((batches.mean(1) - values.mean(0)) / values.std(0)) ** 2).mean(0).sqrt().mean()
    expected_var = ((batches.var(1) / values.var(0) - 1) ** 2).mean(0).sqrt().mean()
    assert mean_noise == pytest.approx(expected_mean.item(), rel=1e-9)
    assert var_noise == pytest.approx(expected_var.item(), rel=1e-9)
    assert model.training  # the measuring pass was in eval mode and the mode is restored


def test_shuffled_batches_are_a_seeded_permutation_cut_into_batches():
    values = torch.arange(22.0).reshape(11, 2)
    batches = shuffled_batches(values, 3, seed=1)
    assert batches.shape == (3, 3, 2)
    rows = batches.reshape(-1, 2)
    assert len(set(rows[:, 0].tolist())) == 9 and torch.equal(rows[:, 1], rows[:, 0] + 1)  # whole rows, no repeats
    assert torch.equal(shuffled_batches(values, 3, seed=1), batches)
    assert not torch.equal(shuffled_batches(values, 3, seed=2), batches)


def test_shuffling_removes_what_the_file_order_groups_together():
    # Each unit's values sorted, as a file sorted by label would group similar images: contiguous batches of 64
    # have means far from the population's. Shuffled batches (a partition of a random permutation) have
    # E[(batch mean - mean)^2] / S^2 = (1/B)(1 - B/N) with S^2 the N - 1 variance (sampling without replacement).
    count, units, size = 4096, 64, 64
    values = torch.randn(count, units, generator=torch.Generator().manual_seed(0)).sort(dim=0).values
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.BatchNorm1d(units))
    mean_noise, var_noise = batch_statistic_noise(model, values, size, seed=3)
    expected = ((1 - size / count) / size) ** 0.5  # 0.124
    assert mean_noise == pytest.approx(expected, rel=0.05)  # 4,096 squared errors: relative SE of the RMS ~1 %
    assert var_noise == pytest.approx((2 / (size - 1)) ** 0.5, rel=0.1)
    contiguous = values.reshape(-1, size, units)  # what batching in file order measured
    contiguous_mean_noise = ((contiguous.mean(1) - values.mean(0)) / values.std(0)).pow(2).mean(0).sqrt().mean()
    assert contiguous_mean_noise > 5 * mean_noise  # about 1.0 against 0.12


def test_noise_shrinks_with_batch_size_and_is_none_without_batchnorm():
    torch.manual_seed(1)
    model, images = make_mlp(bn="before"), torch.rand(2048, 1, 28, 28)
    small, large = batch_statistic_noise(model, images, 4), batch_statistic_noise(model, images, 256)
    assert small[0] > 4 * large[0] and small[1] > 4 * large[1]
    assert batch_statistic_noise(make_mlp(bn="before", norm="layer"), images, 4) == (None, None)


def test_layernorm_output_ignores_batch_mates_and_batchnorm_in_train_mode_does_not():
    torch.manual_seed(2)
    example, mates = torch.rand(1, 1, 28, 28), torch.rand(2, 7, 1, 28, 28)
    outputs = {}
    for norm in ("layer", "group", "batch"):
        model = make_mlp(bn="before", norm=norm).train()
        with torch.no_grad():
            outputs[norm] = [model(torch.cat([example, others]))[0] for others in mates]
    torch.testing.assert_close(*outputs["layer"], rtol=0, atol=1e-6)
    torch.testing.assert_close(*outputs["group"], rtol=0, atol=1e-6)
    first, second = outputs["batch"]
    assert (first - second).abs().max() > 1e-2


def test_one_epoch_run_is_cached_with_the_same_numbers(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    options = {"hidden": [10, 10], "bn": "before"}
    arguments = {"batch_size": 8, "seed": 3, "learning_rate": 0.1, "data": tiny_data, "device": "cpu"}
    trained = one_epoch_run(options, **arguments)
    read = one_epoch_run(options, **arguments)
    assert (trained.cached, read.cached) == (False, True)
    assert read.record == trained.record
    assert set(trained.record) == {"eval_test_acc", "train_mode_test_acc", "mean_noise", "var_noise"}
    for name, tensor in trained.model.state_dict().items():
        torch.testing.assert_close(read.model.state_dict()[name], tensor, rtol=0, atol=0)
    assert not read.model.training
    other = one_epoch_run(options, **{**arguments, "batch_size": 16})
    assert not other.cached and other.record != trained.record  # another configuration, another entry
    assert cache_summary([trained, read, other]).startswith("1 of 3 runs read from the run cache")


def test_noise_images_are_the_first_training_images(tiny_data):
    images, labels = noise_images(tiny_data)
    assert len(labels) == 96  # fewer than NOISE_IMAGES: all of them
    torch.testing.assert_close(images, tiny_data.split("train")[0], rtol=0, atol=0)


def test_bad_arguments(tiny_data):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2, got 1"):
        one_epoch_run({"bn": "before"}, batch_size=1, seed=0, learning_rate=0.1, data=tiny_data)
