"""bnlib.studies.claims: verdicts on claims with known answers, Holm over the claims' tests, and seeds to settle."""

import pandas as pd
import pytest
from scipy import stats

from bnlib.studies.claims import (
    Claim,
    describe_claim,
    describe_open_claims,
    judge_claims,
    run_caveat,
    seeds_to_settle,
    tally_verdicts,
    verdict_line,
)
from bnlib.studies.equivalence import equivalence_test
from bnlib.studies.families import holm_adjust
from bnlib.studies.welch import compare_pair
from tests.support.significance_runs import handmade_runs


def runs_of(**samples):
    return pd.DataFrame({"variant": [name for name, values in samples.items() for _ in values],
                         "test_acc": [value for values in samples.values() for value in values]})  # fmt: skip


def verdict_of(runs, margin=0.5):
    return judge_claims([Claim("x and y are the same", "x", "y")], runs, margin).iloc[0]


def test_no_difference_claims_read_equivalent_different_or_not_resolved():
    # One "same" claim is a family of two tests (Welch and TOST), so Holm asks p < 0.025 of the first.
    equal = verdict_of(runs_of(x=[97.0, 97.1, 97.2], y=[97.05, 97.15, 97.25]))  # TOST p = 0.0026
    assert equal["verdict"] == "equivalent within ±0.5 points" and equal["outcome"] == "equivalent"
    assert equal["interval level"] == pytest.approx(0.95)  # 1 - 2 * 0.025: the level Holm judged TOST at
    assert -0.5 < equal["interval low"] < equal["interval high"] < 0.5
    different = verdict_of(runs_of(x=[97.0, 97.2, 97.4], y=[96.0, 96.1, 96.2]))  # Welch p = 0.0035
    assert different["verdict"] == "different" and different["interval low"] > 0
    # -0.1 apart with se 0.163 on 4 df: TOST p = 0.035, 0.07 after Holm. At its Holm level (0.025) the interval is
    # the 95 % one, -0.1 ± t(0.975, 4) * 0.163 = [-0.55, +0.35]: the runs allow differences up to ±0.55 points.
    close = verdict_of(runs_of(x=[97.0, 97.2, 97.4], y=[97.1, 97.3, 97.5]))
    half_width = stats.t.ppf(0.975, 4) * (0.08 / 3) ** 0.5
    assert close["interval low"] == pytest.approx(-0.1 - half_width) and close["interval level"] == pytest.approx(0.95)
    assert close["verdict"] == f"not resolved: the runs allow differences up to ±{0.1 + half_width:.2f} points"
    assert close["verdict"] == "not resolved: the runs allow differences up to ±0.55 points"
    assert verdict_of(runs_of(x=[97.0, 97.2, 97.4], y=[97.1, 97.3, 97.5]), margin=0.6)["outcome"] == "equivalent"


def test_a_variant_against_zero():
    gaps = pd.DataFrame({"variant": ["flat"] * 3 + ["overfits"] * 3,
                         "train_valid_gap": [0.0, 0.05, -0.05, 0.6, 0.7, 0.8]})  # fmt: skip
    claims = [Claim("flat does not overfit", "flat", None, "train_valid_gap"),
              Claim("overfits does not overfit", "overfits", None, "train_valid_gap")]  # fmt: skip
    judged = judge_claims(claims, gaps, margin=0.5)
    assert judged["verdict"].tolist() == ["equivalent within ±0.5 points", "different"]
    line = describe_claim(judged.iloc[1])
    assert "overfits (0.70) − 0 = +0.70 points" in line and "Welch's test" in line


def test_directions_and_gaps():
    claims = [
        Claim("a beats b", "a", "b", expected="higher"),
        Claim("b beats a", "b", "a", expected="higher"),
        Claim("c beats a", "c", "a", expected="higher", asked_by="us"),
        Claim("a overfits less than b", "a", "b", metric="train_valid_gap", expected="lower"),
        Claim("c overfits less than b", "c", "b", metric="train_valid_gap", expected="lower"),  # c's gap: negative
    ]
    judged = judge_claims(claims, handmade_runs(), margin=0.5)
    assert judged["outcome"].tolist() == [
        "supported", "at odds with our runs", "not resolved", "at odds with our runs", "supported"]
    both_negative = handmade_runs().assign(train_valid_gap=[-1.0, -1.1, -1.2, -0.1, -0.2, -0.3, -1.0, -0.5, -0.6])
    judged = judge_claims(claims[3:4], both_negative, margin=0.5)
    assert judged["outcome"].tolist() == ["no overfitting to compare"]


def test_the_claims_tests_are_one_holm_family_with_each_test_once():
    runs = handmade_runs()
    claims = [
        Claim("a equals c", "a", "c"),  # two tests: Welch and TOST
        Claim("a beats b", "a", "b", expected="higher"),  # one test
        Claim("c beats a", "c", "a", expected="higher", asked_by="us"),  # the first claim's Welch test again
    ]
    judged = judge_claims(claims, runs, margin=0.5)
    assert (judged["family size"] == 3).all()
    tost = equivalence_test(compare_pair(runs, "a", "c"), 0.5)["equivalence p-value"]
    expected = holm_adjust([judged.loc[0, "p-value"], tost, judged.loc[1, "p-value"]])
    assert judged.loc[0, "Holm p (differ)"] == pytest.approx(expected[0])
    assert judged.loc[0, "Holm p (equivalent)"] == pytest.approx(expected[1])
    assert judged.loc[1, "Holm p (differ)"] == pytest.approx(expected[2])
    assert judged.loc[2, "Holm p (differ)"] == judged.loc[0, "Holm p (differ)"]
    assert pd.isna(judged.loc[1, "Holm p (equivalent)"])  # a direction has no equivalence test
    counts = tally_verdicts(judged)
    assert counts.sum() == 2 and counts["not resolved"] == 1 and counts["supported"] == 1  # a pair once


def test_describe_claim_names_the_source_the_interval_and_the_mechanism():
    claims = [Claim("a equals c", "a", "c", mechanism=("one line of why",)),
              Claim("b is below a", "b", "a", expected="lower", asked_by="dropout notebook")]  # fmt: skip
    judged = judge_claims(claims, handmade_runs(), margin=0.5)
    first = describe_claim(judged.iloc[0], caveat="caveat: short runs")
    assert first.startswith("- **a equals c** (the lecture's claim): **not resolved: the runs allow differences up")
    assert "(caveat: short runs)**. a (97.20) − c (97.30) = -0.10 points, " in first
    assert "interval [" in first and "(equivalence test, Holm-adjusted p = " in first
    assert first.endswith("\n  - Why: one line of why")
    second = describe_claim(judged.iloc[1])
    assert "(from the course's dropout notebook, not this lecture): **supported**" in second
    with pytest.raises(ValueError, match="expected"):
        Claim("x", "a", "b", expected="+1")
    with pytest.raises(ValueError, match="asked_by"):
        Claim("x", "a", "b", asked_by="me")


def test_seeds_to_settle_the_open_claims():
    runs = handmade_runs()
    claims = [Claim("a equals c", "a", "c"), Claim("a beats b", "a", "b", expected="higher")]
    judged = judge_claims(claims, runs, margin=0.5)
    table = seeds_to_settle(judged, runs)
    assert table["claim"].tolist() == ["a equals c"] and table.loc[0, "to show"] == "equivalent"
    assert table.loc[0, "seeds per variant"] > 3


def test_run_caveat_names_short_runs_and_fallback_data():
    assert run_caveat(50, fallback=False) == ""
    assert "2-epoch runs on full MNIST" in run_caveat(2, fallback=False)
    assert "50-epoch runs on the small fallback sample" in run_caveat(50, fallback=True)


def test_open_claims_and_verdict_lines_in_words():
    runs = handmade_runs()
    judged = judge_claims([Claim("a equals c", "a", "c")], runs, margin=0.5)
    text = describe_open_claims(seeds_to_settle(judged, runs))
    assert text.startswith("Seeds per variant that would settle each open claim 80% of the time")
    # pooled over a, b and c: sqrt((0.04 + 0.01 + 0.04) / 3) = 0.173
    assert "\n- a equals c: " in text and "to show equivalence (observed -0.10, pooled std 0.173)" in text
    assert describe_open_claims(seeds_to_settle(judged.iloc[:0], runs)) == "No claim is left open."
    assert verdict_line(judged.iloc[0]) == ("not resolved: the runs allow differences up to ±0.55 points: a equals c "
                                            "(a − c: -0.10, 95% interval [-0.55, +0.35])")
