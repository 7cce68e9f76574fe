"""bnlib.studies.overfitting: the train − validation gap read against the validation images' sampling error."""

import math

import pytest

from bnlib.studies.overfitting import accuracy_standard_error, describe_gap_change, gaps_show_overfitting, read_gap


def test_accuracy_standard_error_is_binomial():
    assert accuracy_standard_error(97.0, 6000) == pytest.approx(100 * math.sqrt(0.97 * 0.03 / 6000))  # 0.22 points
    assert accuracy_standard_error(100.0, 6000) == 0.0
    with pytest.raises(ValueError, match="num_images"):
        accuracy_standard_error(97.0, 0)


def test_read_gap():
    assert read_gap(1.0, 0.2) == "beyond sampling error"
    assert read_gap(0.3, 0.2) == read_gap(-0.3, 0.2) == "within sampling error of 0"
    assert read_gap(-0.5, 0.2) == "below 0 beyond sampling error"


def test_gaps_show_overfitting_when_one_is_positive():
    assert gaps_show_overfitting(1.0, -0.2) and gaps_show_overfitting(0.1, 0.5)
    assert not gaps_show_overfitting(-0.1, -0.5) and not gaps_show_overfitting(0.0, -0.5)


def test_gap_sentence_reads_each_gap_against_sampling_error():
    sentence = describe_gap_change(2.0, 1.0, "dropout", 0.2)
    assert sentence == ("In this run dropout made the gap smaller (+2.00 without, +1.00 with dropout, in points; both "
                        "beyond sampling error, ±0.40 points, 2 standard errors of the validation accuracy).")
    assert "not smaller" in describe_gap_change(1.0, 2.0, "dropout", 0.2)
    only = describe_gap_change(1.9, 0.28, "dropout", 0.21)  # about the full run's numbers
    assert only.startswith("Only the run without dropout has a gap above 0 beyond sampling error")
    assert only.endswith("With dropout the gap is within sampling error of 0: such a gap measures no overfitting, "
                         "which does not show that there is none.")
    # Quick mode's numbers: validation accuracy 2 points above train accuracy, 5 standard errors: not sampling error.
    below = describe_gap_change(-2.01, -2.10, "dropout", 0.38)
    assert below.startswith("Neither gap is above 0 beyond sampling error")
    assert "Both are below 0 by more than sampling error: the validation images are easier" in below
    mixed = describe_gap_change(-0.1, -0.9, "dropout", 0.2)
    assert "Without dropout the gap is within sampling error of 0" in mixed
    assert "With dropout the gap is below 0 by more than sampling error" in mixed
    for without, with_ in [(1.5, -0.3), (-0.3, 1.5), (-0.2, -1.0), (0.0, 2.0)]:
        sentence = describe_gap_change(without, with_, "dropout", 0.2)
        assert "smaller" not in sentence and "no overfitting at all" not in sentence
