"""AllReduceBatchNorm1d in one process (no process group): exactly BatchNorm1d, forward, backward and buffers.

Across processes it is tested against one process on the global batch in tests/test_data_parallel.py.
"""

import pytest
import torch
from torch import nn

from bnlib.models import make_mlp
from bnlib.stats import batchnorm_layers
from bnlib.stats.sync_batchnorm import AllReduceBatchNorm1d, AllReduceNormalization, convert_to_all_reduce_batchnorm


def _pair(momentum):
    torch.manual_seed(0)
    reference = nn.BatchNorm1d(5, momentum=momentum)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-1, 1)
    return reference, convert_to_all_reduce_batchnorm(nn.Sequential(reference))[0]


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(12, 5), (6, 5, 4)])
def test_outside_a_group_it_is_batchnorm1d(momentum, shape):
    reference, ours = _pair(momentum)
    inputs = torch.randn(shape) * 3 + 10  # a large mean: the float64 sums keep the variance accurate
    output_weights = torch.randn(shape)
    for _ in range(3):  # three steps: the running rule, momentum=None's cumulative average included
        ours_inputs, reference_inputs = inputs.clone().requires_grad_(), inputs.clone().requires_grad_()
        (ours(ours_inputs) * output_weights).sum().backward()
        (reference(reference_inputs) * output_weights).sum().backward()
        torch.testing.assert_close(ours_inputs.grad, reference_inputs.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours(inputs), reference(inputs), rtol=1e-5, atol=1e-5)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(reference, name).grad, rtol=1e-5, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=1e-5, atol=1e-6)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(inputs), reference(inputs), rtol=1e-5, atol=1e-5)


def test_backward_matches_finite_differences():
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(size, dtype=torch.float64, generator=generator, requires_grad=True)
              for size in [(6, 3, 4), (3,), (3,)]]  # fmt: skip
    assert torch.autograd.gradcheck(lambda *tensors: AllReduceNormalization.apply(*tensors, 1e-5)[0], inputs)


def test_conversion_replaces_every_batchnorm1d_and_keeps_the_original():
    model = make_mlp(bn="before")
    converted = convert_to_all_reduce_batchnorm(model)
    assert [type(layer) for _, layer in batchnorm_layers(converted)] == [AllReduceBatchNorm1d] * 2
    assert [type(layer) for _, layer in batchnorm_layers(model)] == [nn.BatchNorm1d] * 2
    assert converted.state_dict().keys() == model.state_dict().keys()
    inputs = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(converted.train()(inputs), model.train()(inputs), rtol=1e-5, atol=1e-5)
