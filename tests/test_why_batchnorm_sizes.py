"""Notebook 08's sizes follow BNLIB_QUICK, and the full grids cover what the notebook's sentences claim."""

from bnlib.why_batchnorm_sizes import FULL, QUICK, why_batchnorm_sizes


def test_sizes_follow_quick_mode(monkeypatch):
    monkeypatch.setenv("BNLIB_QUICK", "1")
    assert why_batchnorm_sizes() is QUICK
    monkeypatch.setenv("BNLIB_QUICK", "0")
    assert why_batchnorm_sizes() is FULL
    assert why_batchnorm_sizes(quick=True) is QUICK


def test_grids_span_what_the_notebook_needs():
    for sizes in (FULL, QUICK):
        assert list(sizes.learning_rates) == sorted(sizes.learning_rates)
        assert list(sizes.init_stds) == sorted(sizes.init_stds)
        assert sizes.learning_rates[0] <= 0.01 and sizes.learning_rates[-1] >= 10  # well past where plain MLPs diverge
        assert sizes.early_steps < sizes.figure_steps and sizes.figure_steps % sizes.track_every == 0
