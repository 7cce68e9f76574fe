"""Generated inputs for the exercise checks, each built to expose a named mistake, plus the caller's own `z`.

Every case has N != C (statistics over the wrong dimension show), C >= 4, and comes from a fixed seed.
"""

import copy

import torch
from torch import nn

from bnlib.exercises.base import Case
from bnlib.exercises.mistakes import other_eps

EXERCISE_SEED = 453  # the lecture's course number: any fixed seed gives the same cases every run


def batch(generator, n, c, mean=0.0, std=1.0, dtype=torch.float32):
    """(n, c) values: column means `mean`, standard deviations `std` (numbers or (c,) tensors)."""
    values = torch.randn(n, c, generator=generator, dtype=torch.float64)
    return (torch.as_tensor(mean, dtype=torch.float64) + torch.as_tensor(std, dtype=torch.float64) * values).to(dtype)


def affine(generator, c, dtype=torch.float32):
    """gamma with |gamma| in [0.5, 2] and either sign (so that forgetting it shows), beta ~ N(0, 1)."""
    size = 0.5 + 1.5 * torch.rand(c, generator=generator, dtype=torch.float64)
    sign = torch.where(torch.rand(c, generator=generator) < 0.5, -1.0, 1.0).double()
    return (sign * size).to(dtype), torch.randn(c, generator=generator, dtype=torch.float64).to(dtype)


def spreads(c):
    """(c,) standard deviations from 1e-2 to 1e3: large and tiny variances side by side."""
    return torch.logspace(-2, 3, c, dtype=torch.float64)


def check_activations(z):
    """The caller's activations as a float tensor (N, C) with N >= 2, detached on the CPU; ValueError otherwise."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] < 2 or not z.is_floating_point():
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z must be a floating-point tensor of shape (N, C) with N >= 2, got {shape}")
    return z.detach().to("cpu").clone()


def batches(generator):
    """(name, z, eps) triples shared by the forward and backward checks: eps varies, with variances near it."""
    return [
        ("random values", batch(generator, 32, 7, 0.5, 2.0), 1e-5),
        ("a small batch, where N - 1 differs from N", batch(generator, 4, 6, 1.0, 1.5), 1e-3),
        ("variances near eps = 1e-5", batch(generator, 8, 5, 0.2, 3e-3), 1e-5),
        ("variances near eps = 1e-3", batch(generator, 12, 5, -0.3, 0.03), 1e-3),
        ("variances near eps = 0.1", batch(generator, 9, 4, 1.0, 0.3), 0.1),
        ("a large mean next to a small spread (mean 3, std 0.01)", batch(generator, 64, 4, 3.0, 0.01), 1e-5),
        ("large and tiny variances", batch(generator, 16, 6, torch.linspace(-5, 5, 6), spreads(6)), 1e-3),
        ("random values in float64", batch(generator, 10, 12, -1.0, 3.0, torch.float64), 0.1),
    ]


def with_eps(case, index):
    """The case with its eps (args[index]) replaced by one far from it."""
    args = list(case.args)
    args[index] = other_eps(args[index])
    return Case(case.name, tuple(args), case.data)


def train_cases(z=None):
    """Cases for fn(z, gamma, beta, eps)."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED)
    named = batches(generator) + ([("your model's activations", check_activations(z), 1e-5)] if z is not None else [])
    return [Case(name, (values, *affine(generator, values.shape[1], values.dtype), eps)) for name, values, eps in named]


def backward_cases(z=None):
    """Cases for fn(dout, z, gamma, eps); dout has a non-zero mean, so constant statistics show."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 1)
    named = batches(generator) + ([("your model's activations", check_activations(z), 1e-5)] if z is not None else [])
    cases = []
    for name, values, eps in named:
        dout = batch(generator, *values.shape, 0.3, 1.0, values.dtype)
        cases.append(Case(name, (dout, values, affine(generator, values.shape[1], values.dtype)[0], eps)))
    return cases


def _running(generator, c, dtype):
    mean = torch.randn(c, generator=generator, dtype=torch.float64)
    var = 0.5 + 1.5 * torch.rand(c, generator=generator, dtype=torch.float64)
    return mean.to(dtype), var.to(dtype)


def running_cases(z=None):
    """Cases for fn(running_mean, running_var, batch, momentum, step), step counted from 1."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 2)
    settings = [  # name, (N, C), dtype, momentum, step
        ("momentum 0.1, the first step", (16, 5), torch.float32, 0.1, 1),
        ("a small batch (N = 3), where the unbiased variance differs", (3, 5), torch.float32, 0.1, 7),
        ("momentum 0.3 in float64, where Keras' convention differs", (12, 4), torch.float64, 0.3, 12),
        ("momentum=None at step 1 (cumulative average)", (8, 6), torch.float32, None, 1),
        ("momentum=None at step 4", (8, 6), torch.float32, None, 4),
        ("momentum=None at step 50 in float64", (20, 4), torch.float64, None, 50),
    ]
    cases = []
    for name, (n, c), dtype, momentum, step in settings:
        values = batch(generator, n, c, 1.0, 2.0, dtype)
        cases.append(Case(name, (*_running(generator, c, dtype), values, momentum, step)))
    if z is not None:
        values = check_activations(z)
        mean, var = _running(generator, values.shape[1], values.dtype)
        cases.append(Case("your model's activations, momentum 0.1, step 20",
                          (values.mean(0) + mean * values.std(0), values.var(0) * var, values, 0.1, 20)))
    return cases


def eval_cases(z=None):
    """Cases for fn(z, running_mean, running_var, gamma, beta, eps); the running statistics differ from the batch's."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 3)
    named = [  # name, z, running mean, running var, eps
        ("random values", batch(generator, 16, 6, 0.5, 2.0), 1.0, 2.0, 1e-5),
        ("running variances near eps = 1e-5", batch(generator, 12, 5, 0.0, 3e-3), 0.0, 1e-5, 1e-5),
        ("running variances near eps = 1e-3", batch(generator, 10, 4, 0.2, 0.03), 0.2, 1e-3, 1e-3),
        ("running variances near eps = 0.1", batch(generator, 8, 5, -0.5, 0.3), -0.5, 0.1, 0.1),
        ("large and tiny variances", batch(generator, 16, 6, 0.0, spreads(6)), 0.0, spreads(6) ** 2, 1e-3),
        ("random values in float64", batch(generator, 9, 4, -1.0, 1.0, torch.float64), -0.5, 1.5, 0.1),
        ("one example (N = 1)", batch(generator, 1, 5, 1.0, 2.0), 0.5, 3.0, 1e-5),
    ]
    if z is not None:
        values = check_activations(z)
        named.append(("your model's activations", values, values.mean(0).double(), values.var(0).double(), 1e-5))
    cases = []
    for name, values, center, variance, eps in named:
        c = values.shape[1]
        running_mean = batch(generator, 1, c, center, torch.as_tensor(variance).sqrt(), values.dtype)[0]
        running_var = (torch.as_tensor(variance, dtype=torch.float64)
                       * (0.5 + torch.rand(c, generator=generator, dtype=torch.float64))).expand(c).to(values.dtype)
        cases.append(Case(name, (values, running_mean, running_var, *affine(generator, c, values.dtype), eps)))
    return cases


def _layers(generator, in_features, out_features, *, bias, dtype, eps=1e-5, near_eps=False):
    """A Linear and an eval-mode BatchNorm1d whose running statistics fit the Linear's outputs."""
    with torch.random.fork_rng(devices=[]):  # the layers' own initialization must not move the global seed
        linear = nn.Linear(in_features, out_features, bias=bias, dtype=dtype).eval()
    norm = nn.BatchNorm1d(out_features, eps=eps, dtype=dtype).eval()
    x = batch(generator, 32, in_features, 0.0, 1.0, dtype)
    with torch.no_grad():
        linear.weight.copy_(batch(generator, out_features, in_features, 0.0, 0.5, dtype))
        if bias:
            linear.bias.copy_(batch(generator, 1, out_features, 1.0, 1.0, dtype)[0])
        outputs = linear(x)
        norm.running_mean.copy_(outputs.mean(0) + 0.3 * outputs.std(0))
        norm.running_var.copy_(outputs.var(0) * (0.5 + torch.rand(out_features, generator=generator)).to(dtype))
        if near_eps:  # every other unit: a running variance of the size of eps
            norm.running_var[::2] = eps * (1 + torch.arange(len(norm.running_var[::2]), dtype=dtype))
        norm.weight.copy_(affine(generator, out_features, dtype)[0])
        norm.bias.copy_(affine(generator, out_features, dtype)[1])
    return linear, norm, x


def fold_cases():
    """Cases for fn(linear, bn), both in eval mode: data['x'] holds the inputs both models are compared on."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 4)
    settings = [
        ("a Linear with bias", dict(in_features=6, out_features=4, bias=True, dtype=torch.float32)),
        ("a Linear without bias (bias=False), eps 1e-3", dict(in_features=7, out_features=5, bias=False,
                                                              dtype=torch.float32, eps=1e-3, near_eps=True)),
        ("running variances near eps = 1e-5", dict(in_features=5, out_features=6, bias=True, dtype=torch.float32,
                                                   near_eps=True)),
        ("running variances near eps = 0.1", dict(in_features=4, out_features=5, bias=True, dtype=torch.float32,
                                                  eps=0.1, near_eps=True)),
        ("float64 layers, eps 1e-3", dict(in_features=8, out_features=4, bias=True, dtype=torch.float64, eps=1e-3)),
    ]
    cases = []
    for name, options in settings:
        linear, norm, x = _layers(generator, **options)
        cases.append(Case(name, (linear, norm), {"x": x}))
    return cases


def fold_with_eps(case):
    """The fold case with bn.eps far from its own."""
    linear, norm = case.args
    norm = copy.deepcopy(norm)
    norm.eps = other_eps(norm.eps)
    return Case(case.name, (linear, norm), case.data)


def images(generator, shape, mean=0.0, std=1.0, dtype=torch.float32):
    """Values of `shape` (N, C, ...), channel means `mean` and standard deviations `std` (numbers or (C,))."""
    values = torch.randn(*shape, generator=generator, dtype=torch.float64)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    mean = torch.as_tensor(mean, dtype=torch.float64).expand(shape[1]).reshape(per_channel)
    std = torch.as_tensor(std, dtype=torch.float64).expand(shape[1]).reshape(per_channel)
    return (mean + std * values).to(dtype)


def check_images(z, dims=(4,)):
    """The caller's activations as a float (N, C, ...) tensor of one of `dims` dimensions, detached on the CPU."""
    if not isinstance(z, torch.Tensor) or z.dim() not in dims or not z.is_floating_point():
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        wanted = " or ".join({3: "(N, C, L)", 4: "(N, C, H, W)"}[dim] for dim in dims)
        raise ValueError(f"z must be a floating-point tensor of shape {wanted}, got {shape}")
    return z.detach().to("cpu").clone()


def train2d_cases(z=None):
    """Cases for fn(x, gamma, beta, eps) with x (N, C, H, W); the first has W = C, so that a (C,) tensor
    broadcast against x lines up with W without an error."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 5)
    named = [  # name, x, eps
        ("random values, W = C", images(generator, (6, 4, 3, 4), 0.5, 2.0), 1e-5),
        ("a small batch (N = 2)", images(generator, (2, 5, 3, 2), 1.0, 1.5), 1e-3),
        ("variances near eps = 1e-5", images(generator, (5, 4, 2, 3), 0.2, 3e-3), 1e-5),
        ("variances near eps = 1e-3", images(generator, (4, 6, 2, 3), -0.3, 0.03), 1e-3),
        ("variances near eps = 0.1", images(generator, (3, 5, 4, 2), 1.0, 0.3), 0.1),
        ("a large mean next to a small spread (mean 3, std 0.01)", images(generator, (16, 4, 2, 3), 3.0, 0.01), 1e-5),
        ("large and tiny variances", images(generator, (4, 6, 3, 5), torch.linspace(-5, 5, 6), spreads(6)), 1e-3),
        ("random values in float64", images(generator, (3, 7, 2, 5), -1.0, 3.0, torch.float64), 0.1),
    ]
    if z is not None:
        named.append(("your model's activations", check_images(z), 1e-5))
    return [Case(name, (values, *affine(generator, values.shape[1], values.dtype), eps)) for name, values, eps in named]


def running_nd_cases(z=None):
    """Cases for fn(running_mean, running_var, batch, momentum, step) with batch (N, C, L) or (N, C, H, W)."""
    generator = torch.Generator().manual_seed(EXERCISE_SEED + 6)
    settings = [  # name, shape, dtype, momentum, step
        ("(N, C, L) input, momentum 0.1, the first step", (4, 5, 6), torch.float32, 0.1, 1),
        ("(N, C, L) with N = 2, where N − 1 and N · L − 1 differ most", (2, 5, 3), torch.float32, 0.1, 7),
        ("(N, C, H, W) input, momentum 0.3 in float64", (3, 4, 2, 3), torch.float64, 0.3, 12),
        ("(N, C, H, W), momentum=None at step 1 (cumulative average)", (2, 6, 3, 2), torch.float32, None, 1),
        ("(N, C, L), momentum=None at step 4", (3, 4, 5), torch.float32, None, 4),
        ("(N, C, H, W), momentum=None at step 50 in float64", (2, 4, 2, 2), torch.float64, None, 50),
        ("(N, C, H, W) with N = 3, momentum 0.1", (3, 5, 2, 2), torch.float32, 0.1, 3),
    ]
    cases = []
    for name, shape, dtype, momentum, step in settings:
        values = images(generator, shape, 1.0, 2.0, dtype)
        cases.append(Case(name, (*_running(generator, shape[1], dtype), values, momentum, step)))
    if z is not None:
        values = check_images(z, dims=(3, 4))
        cases.append(Case("your model's activations, momentum 0.1, step 20",
                          (*_running(generator, values.shape[1], values.dtype), values, 0.1, 20)))
    return cases
