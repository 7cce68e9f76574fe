"""bnlib.stats.batchnorm.with_per_batch_statistics: track_running_stats=False, so no buffers and batch statistics in
eval mode; batch-mates matter and one example fails."""

import pytest
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.stats.batchnorm import with_per_batch_statistics


def test_same_as_a_layer_built_with_track_running_stats_false():
    torch.manual_seed(0)
    layer = nn.BatchNorm1d(4)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-1, 1)
    built = nn.BatchNorm1d(4, track_running_stats=False)
    built.load_state_dict(layer.state_dict(), strict=False)
    converted = with_per_batch_statistics(nn.Sequential(layer))[0]
    assert converted.state_dict().keys() == built.state_dict().keys() == {"weight", "bias"}
    inputs = torch.randn(6, 4) * 2 + 3
    torch.testing.assert_close(converted.eval()(inputs), built.eval()(inputs), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(converted(inputs), layer.train()(inputs), rtol=1e-6, atol=1e-6)
    assert layer.running_mean is not None  # the original keeps its buffers


def test_eval_output_depends_on_batch_mates_and_one_example_fails():
    torch.manual_seed(1)
    model = with_per_batch_statistics(make_mlp(bn="before")).eval()
    example, mates_a, mates_b = torch.rand(1, 1, 28, 28), torch.rand(7, 1, 28, 28), torch.rand(7, 1, 28, 28) * 0.5
    with torch.no_grad():
        first = model(torch.cat([example, mates_a]))[0]
        second = model(torch.cat([example, mates_b]))[0]
        assert (first - second).abs().max() > 1e-2
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            model(example)
