"""The shared argument checks: accepted values come back, rejected ones raise a ValueError naming the parameter."""

import pytest

from bnlib.checks import check_choice, check_integer, check_number


def test_check_integer_accepts_and_rejects():
    assert check_integer("epochs", 3, minimum=1) == 3
    for bad in (0, -1, True, 2.0, "3"):
        with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got"):
            check_integer("epochs", bad, minimum=1)


def test_check_number_interval_ends():
    assert check_number("momentum", 1, 0, 1, low_open=True) == 1.0
    with pytest.raises(ValueError, match=r"momentum must be a number in \(0, 1\], got 0"):
        check_number("momentum", 0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1"):
        check_number("dropout", 1, 0, 1, high_open=True)
    with pytest.raises(ValueError, match="got True"):
        check_number("dropout", True, 0, 1)
    assert check_number("std", 5.0, 0, None, low_open=True) == 5.0


def test_check_choice_lists_the_choices():
    assert check_choice("bn", "before", (None, "before", "after")) == "before"
    assert check_choice("bias", None, (None, True, False)) is None
    for bad in (1, 0, 1.0, "True"):  # equal to True/False in Python, but another cache key
        with pytest.raises(ValueError, match="bias must be one of"):
            check_choice("bias", bad, (None, True, False))
    with pytest.raises(ValueError, match=r"bn must be one of \(None, 'before', 'after'\), got 'middle'"):
        check_choice("bn", "middle", (None, "before", "after"))
