"""Settings: BNLIB_QUICK read in one place, its sections follow it, and quick mode cuts the pitfall notebooks' data."""

import pytest
import torch

from bnlib.config import FULL, QUICK, env_flag, env_value, settings
from bnlib.data import MNISTSplits, first_images


def test_sections_follow_quick_mode(monkeypatch):
    monkeypatch.setenv("BNLIB_QUICK", "1")
    assert settings().pitfalls is QUICK.pitfalls and settings().why is QUICK.why
    monkeypatch.setenv("BNLIB_QUICK", "0")
    assert settings().pitfalls is FULL.pitfalls and settings().why is FULL.why
    assert settings(quick=True).why is QUICK.why
    assert FULL.pitfalls.accumulation_batch_size % FULL.pitfalls.micro_batches == 0


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("no", False),
                                             ("", None), ("maybe", None)])  # fmt: skip
def test_env_flag(monkeypatch, value, expected):
    monkeypatch.setenv("BNLIB_SOME_FLAG", value)
    for default in (False, True):
        assert env_flag("BNLIB_SOME_FLAG", default) is (default if expected is None else expected)


def test_env_value_is_stripped_and_lowercased(monkeypatch):
    monkeypatch.delenv("BNLIB_SOME_SWITCH", raising=False)
    assert env_value("BNLIB_SOME_SWITCH") == ""
    monkeypatch.setenv("BNLIB_SOME_SWITCH", "  Inline\n")
    assert env_value("BNLIB_SOME_SWITCH") == "inline"


def test_why_grids_span_what_the_notebook_needs():
    for sizes in (FULL.why, QUICK.why):
        assert list(sizes.learning_rates) == sorted(sizes.learning_rates)
        assert list(sizes.init_stds) == sorted(sizes.init_stds)
        assert sizes.learning_rates[0] <= 0.01 and sizes.learning_rates[-1] >= 10  # well past where plain MLPs diverge
        assert sizes.early_steps < sizes.figure_steps and sizes.figure_steps % sizes.track_every == 0


def test_first_images():
    def split(count):
        return torch.arange(count).float().reshape(-1, 1, 1, 1), torch.arange(count)

    data = MNISTSplits(train=split(5000), valid=split(100), test=split(3000), source="s")
    sizes = QUICK.pitfalls
    assert first_images(data) is data
    cut = first_images(data, sizes.num_train, sizes.num_test)
    assert len(cut.train[0]) == sizes.num_train and len(cut.test[1]) == sizes.num_test
    assert torch.equal(cut.train[1], torch.arange(sizes.num_train)) and cut.valid is data.valid
    assert f"quick mode: the first {sizes.num_train:,} training and {sizes.num_test:,} test images" in cut.source


def test_the_equivalence_margin_and_seeds_are_settings():
    # Declared before the runs, the same in both modes: quick mode changes how long runs train, not what matters.
    assert FULL.equivalence_margin == QUICK.equivalence_margin == settings().equivalence_margin == 0.5
    assert FULL.num_seeds == 5 and QUICK.num_seeds >= 2  # Welch's test needs a spread from each variant
