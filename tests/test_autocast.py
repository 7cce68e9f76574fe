"""bnlib.studies.autocast: under bfloat16 autocast the CNN's activations are bfloat16, BatchNorm's running
statistics stay float32 and move as in float32 up to bfloat16 rounding; accuracy is measured in both."""

import copy

import torch

from bnlib.data import TensorLoader
from bnlib.models import make_cnn
from bnlib.studies import autocast
from bnlib.train import compute_accuracy

BFLOAT16_ROUNDING = 2.0**-8  # bfloat16 keeps 8 significant bits: relative rounding of at most 2**-8 per value


def model_after_step(model):
    """A copy of `model` after one train-mode forward in float32 on the test's batch."""
    stepped = copy.deepcopy(model).train()
    with torch.no_grad():
        stepped(inputs_of_the_test())
    return stepped


def inputs_of_the_test():
    return torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_activations_are_bfloat16_and_running_statistics_stay_float32():
    torch.manual_seed(0)
    model = make_cnn(bn="before")
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}
    rows = {row["layer"]: row for row in autocast.dtypes_in_train_step(model, inputs_of_the_test())}
    assert [row["output dtype"] for row in rows.values()] == ["bfloat16"] * len(model)  # conv casts, the rest follow
    batchnorms = [row for name, row in rows.items() if "BatchNorm2d" in name]
    assert [row["layer"] for row in batchnorms] == ["1 (BatchNorm2d)", "5 (BatchNorm2d)"]
    assert all(row["running statistics dtype"] == "float32" for row in batchnorms)
    assert all(row["running statistics dtype"] == "" for name, row in rows.items() if "BatchNorm2d" not in name)
    # one step from (0, 1) moves the buffers by momentum (0.1) times the batch statistics; bfloat16 inputs change a
    # statistic by a few bfloat16 roundings of it (2**-8 relative each): a nonzero change, but a small one
    stepped = model_after_step(model)
    for row, layer in zip(batchnorms, (stepped[1], stepped[5]), strict=True):
        statistics = torch.cat([layer.running_mean, layer.running_var - 0.9]) / 0.1
        change = row["max |change vs float32 pass|"]
        assert 0 < change <= 0.1 * 4 * BFLOAT16_ROUNDING * statistics.abs().max().item(), row
    for name, buffer in model.named_buffers():  # the model itself is left as it was
        torch.testing.assert_close(buffer, before[name], rtol=0, atol=0)


def test_accuracy_in_float32_is_the_models_and_bfloat16_is_measured():
    torch.manual_seed(0)
    model = make_cnn(bn="before").eval()
    images, labels = torch.rand(200, 1, 28, 28), torch.randint(0, 10, (200,))
    accuracy = autocast.compare_accuracy(model, images, labels, batch_size=64)
    assert list(accuracy) == ["float32", "bfloat16 autocast"]
    assert accuracy["float32"] == compute_accuracy(model, TensorLoader(images, labels, 200))
    assert 0 <= accuracy["bfloat16 autocast"] <= 100
