"""A parameters-only checkpoint loses BatchNorm's buffers: strict=True names them, strict=False changes eval outputs."""

import pytest
import torch

from bnlib.models import make_mlp
from bnlib.studies.checkpoints import missing_buffers, parameters_only, weight_of_next_batch


def _trained():
    torch.manual_seed(0)
    model = make_mlp(bn="before").train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.rand(32, 1, 28, 28) * 2 + 0.5)  # move the running statistics away from 0 and 1
    return model.eval()


def test_parameters_only_misses_every_batchnorm_buffer():
    model = _trained()
    checkpoint = parameters_only(model)
    expected = sorted(f"{layer}.{buffer}" for layer in (2, 5)
                      for buffer in ("num_batches_tracked", "running_mean", "running_var"))  # fmt: skip
    assert missing_buffers(model, checkpoint) == expected
    assert missing_buffers(model, model.state_dict()) == []
    assert set(checkpoint) | set(expected) == set(model.state_dict())


def test_strict_loading_names_the_missing_buffers():
    model = _trained()
    with pytest.raises(RuntimeError) as error:
        make_mlp(bn="before").load_state_dict(parameters_only(model), strict=True)
    message = str(error.value)
    assert "Missing key(s) in state_dict" in message
    for name in missing_buffers(model, parameters_only(model)):
        # A dict without version metadata counts as a checkpoint from before num_batches_tracked
        # existed: BatchNorm fills that one in (with its own value) and names only the others.
        assert (f'"{name}"' in message) is not name.endswith("num_batches_tracked"), name


def test_non_strict_loading_keeps_default_statistics_and_changes_eval_outputs():
    model = _trained()
    restored = make_mlp(bn="before")
    result = restored.load_state_dict(parameters_only(model), strict=False)
    assert sorted(result.missing_keys) == ["2.running_mean", "2.running_var", "5.running_mean", "5.running_var"]
    assert torch.equal(restored[2].running_mean, torch.zeros(75))
    assert torch.equal(restored[2].running_var, torch.ones(75))
    assert restored[2].num_batches_tracked.item() == 0 and model[2].num_batches_tracked.item() == 5
    images = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        assert (restored.eval()(images) - model(images)).abs().max() > 0.1
        full = make_mlp(bn="before")
        full.load_state_dict(model.state_dict())
        torch.testing.assert_close(full.eval()(images), model(images), rtol=0, atol=0)


@pytest.mark.parametrize("count", [0, 9, 2_000])
def test_weight_of_next_batch_is_one_over_the_count_plus_one(count):
    torch.manual_seed(0)
    layer = torch.nn.BatchNorm1d(20)
    inputs = torch.randn(256, 20) * 3 + 1
    layer.num_batches_tracked.fill_(5)
    weight = weight_of_next_batch(layer, inputs, count)
    torch.testing.assert_close(torch.tensor(weight), torch.tensor(1 / (count + 1)), rtol=1e-4, atol=1e-7)
    assert layer.num_batches_tracked.item() == 5  # measured on a copy
