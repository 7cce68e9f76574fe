"""bnlib.summary: mean ± std per variant, and the rule for a real difference between two variants."""

import math

import pandas as pd
import pytest

from bnlib.summary import compare_pair, compare_variants, describe_pair, judge_claim, pooled_std, summarize_runs


def handmade_runs():
    return pd.DataFrame(
        {
            "variant": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "test_acc": [97.0, 97.2, 97.4, 96.0, 96.1, 96.2, 97.1, 97.3, 97.5],
            "train_test_gap": [2.0, 2.5, 3.0, 0.5, 0.6, 0.7, 1.0, 1.0, 1.0],
        }
    )


def test_summarize_runs_gives_mean_and_std_sorted():
    table = summarize_runs(handmade_runs())
    assert list(table.index) == ["c", "a", "b"]
    assert table.loc["a", "test_acc mean"] == pytest.approx(97.2)
    assert table.loc["a", "test_acc std"] == pytest.approx(0.2)  # ddof = 1
    assert table.loc["b", "train_test_gap std"] == pytest.approx(0.1) and (table["runs"] == 3).all()


def test_the_rule_compares_the_difference_with_twice_the_pooled_std():
    runs = handmade_runs()
    assert pooled_std([1.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(math.sqrt(2.0 / 3.0))
    clear = compare_pair(runs, "a", "b")
    assert clear["difference"] == pytest.approx(1.1)
    assert clear["pooled std"] == pytest.approx(math.sqrt((0.04 + 0.01) / 2))
    assert clear["exceeds"] and "larger than the seed-to-seed spread" in describe_pair(clear)
    close = compare_pair(runs, "a", "c")
    assert close["difference"] == pytest.approx(-0.1) and not close["exceeds"]
    assert "cannot tell" in describe_pair(close)
    assert compare_pair(runs, "a", "b", factor=8.0)["exceeds"] is False  # 1.1 < 8 × 0.158


def test_compare_variants_covers_every_pair_larger_mean_first():
    table = compare_variants(handmade_runs())
    assert len(table) == 3 and (table["difference"] >= 0).all()
    assert set(zip(table["a"], table["b"], strict=True)) == {("a", "b"), ("c", "b"), ("c", "a")}
    assert table["exceeds"].tolist() == [True, True, False]


def test_judge_claim_reads_the_verdict_against_the_claim():
    runs = handmade_runs()
    a_above_b, a_near_c = compare_pair(runs, "a", "b"), compare_pair(runs, "a", "c")
    assert judge_claim(a_above_b, +1) == "consistent" and judge_claim(a_above_b, -1) == "contradicted"
    assert judge_claim(a_above_b, 0) == "contradicted" and judge_claim(a_near_c, 0) == "consistent"
    assert judge_claim(a_near_c, -1) == "unresolved"
    with pytest.raises(ValueError, match="expected"):
        judge_claim(a_near_c, 2)


def test_one_seed_is_not_enough_for_a_spread():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        summarize_runs(handmade_runs().iloc[:7])
    with pytest.raises(ValueError, match="not in runs"):
        compare_pair(handmade_runs(), "a", "z")
