"""Notebook 09, section 6: scale invariance of the weights before a BatchNorm, parameter groups for weight decay,
and the cached weight-decay run."""

import pytest
import torch
from torch import nn

from bnlib.data import MNISTSplits
from bnlib.models import make_cnn, make_mlp
from bnlib.runs import cnn_spec
from bnlib.studies.weight_decay import (
    decay_run,
    measure_scale_invariance,
    parameter_groups,
    scale_invariant_layers,
    weight_norms,
)


def batch(seed=0, count=16):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 1, 12, 12, generator=generator), torch.randint(0, 10, (count,), generator=generator)


def small_cnn(seed=0, **options):
    torch.manual_seed(seed)
    return make_cnn((4, 6), image_size=12, **options)


def test_the_weights_directly_before_a_batchnorm_are_the_scale_invariant_ones():
    assert [name for name, _ in scale_invariant_layers(small_cnn(bn="before"))] == ["0", "4"]
    assert scale_invariant_layers(small_cnn()) == []
    assert [name for name, _ in scale_invariant_layers(make_mlp(bn="before"))] == ["1", "4"]
    assert [name for name, _ in scale_invariant_layers(make_mlp(bn="after"))] == ["2", "5"]  # ReLUs: no weight


def test_f_of_5w_is_f_of_w_exactly_in_float64_and_the_gradient_is_divided_by_5():
    images, labels = batch()
    check = measure_scale_invariance(small_cnn(bn="before"), images, labels, factor=5.0, eps=1e-300)
    assert check.output_gap <= 1e-12 * check.output_scale  # float64 rounding: exact up to ~1e-16 per operation
    assert check.gradient_gap <= 1e-10 * check.gradient_scale and check.gradient_scale > 0
    # A mistake the check must see: the gradient at 5W is 1/5 of the one at W, not equal to it.
    scaled = measure_scale_invariance(small_cnn(bn="before"), images, labels, factor=1.0, eps=1e-300)
    assert scaled.gradient_gap == 0 and scaled.output_gap == 0


def test_with_eps_the_invariance_holds_up_to_eps_and_a_model_without_batchnorm_is_refused():
    images, labels = batch()
    gaps = [measure_scale_invariance(small_cnn(bn="before"), images, labels, factor=5.0, eps=eps).output_gap
            for eps in (1e-2, 1e-5, 1e-8, 1e-300)]
    assert gaps[0] > 100 * gaps[1] > 1e4 * gaps[2] > 0 and gaps[1] > 1e-8  # the gap shrinks with eps (about as eps)
    assert gaps[3] < 1e-12
    with pytest.raises(ValueError, match="no layer directly before a BatchNorm"):
        measure_scale_invariance(small_cnn(), images, labels, factor=5.0)


def test_parameter_groups_leave_out_gamma_beta_and_the_scale_invariant_weights():
    model = small_cnn(bn="before")
    decayed, excluded = parameter_groups(model, 0.01, "not BatchNorm's")
    expected = {id(model[index].weight) for index in (0, 4)} | {id(p) for i in (1, 5) for p in model[i].parameters()}
    assert {id(p) for p in excluded["params"]} == expected and excluded["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model[-1].weight), id(model[-1].bias)}
    assert decayed["weight_decay"] == 0.01
    everything, nothing = parameter_groups(model, 0.01, "every parameter")
    assert len(everything["params"]) == len(list(model.parameters())) and nothing["params"] == []
    with pytest.raises(ValueError, match=r"^decayed must be one of \('every parameter', \"not BatchNorm's\"\)"):
        parameter_groups(model, 0.01, "all")
    with pytest.raises(ValueError, match=r"^weight_decay must be a number in \[0, inf\), got -1"):
        parameter_groups(model, -1, "every parameter")


def test_a_decay_run_trains_with_its_groups_and_is_read_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLIB_CACHE_DIR", str(tmp_path))
    images, labels = batch(count=64)
    data = MNISTSplits(train=(images, labels), valid=(images[:16], labels[:16]), test=(images, labels), source="t")
    spec = cnn_spec({"channels": (4, 6), "image_size": 12, "bn": "before"})
    options = {"weight_decay": 0.5, "seed": 0, "num_epochs": 2, "batch_size": 16, "learning_rate": 0.1, "data": data,
               "device": "cpu"}
    runs = {decayed: decay_run(spec, decayed=decayed, **options) for decayed in ("every parameter", "not BatchNorm's")}
    assert not any(run.cached for run in runs.values())
    again = decay_run(spec, decayed="every parameter", **options)
    assert again.cached and again.key == runs["every parameter"].key != runs["not BatchNorm's"].key
    torch.testing.assert_close(again.model.state_dict(), runs["every parameter"].model.state_dict())
    norms = {decayed: weight_norms(run.model) for decayed, run in runs.items()}
    assert set(norms["every parameter"]) == {"0", "4", "gamma"}
    # 8 steps of decay 0.5 at lr 0.1 shrink what they touch by 0.95 per step: gamma clearly, only where decayed.
    assert norms["every parameter"]["gamma"] < 0.9 * norms["not BatchNorm's"]["gamma"]
    assert isinstance(runs["every parameter"].model[1], nn.BatchNorm2d)
