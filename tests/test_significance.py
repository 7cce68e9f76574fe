"""bnlib.studies.significance: mean ± std per variant, Welch's t-test between variants, and the verdicts on claims."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnlib.studies.significance import (
    Claim,
    compare_pair,
    compare_variants,
    describe_claim,
    describe_comparisons,
    describe_gap_change,
    describe_pair,
    detectable_difference,
    judge_claim,
    judge_claims,
    prediction_interval,
    run_caveat,
    summarize_runs,
    tally_verdicts,
)


def handmade_runs():
    return pd.DataFrame(
        {
            "variant": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "test_acc": [97.0, 97.2, 97.4, 96.0, 96.1, 96.2, 97.1, 97.3, 97.5],
            "train_test_gap": [2.0, 2.5, 3.0, 0.5, 0.6, 0.7, -1.0, -0.5, -0.6],
        }
    )


def welch_by_hand(values_a, values_b, alpha=0.05):
    """Welch's test written out: t, Welch–Satterthwaite df, two-sided p and the confidence interval."""
    n_a, n_b = len(values_a), len(values_b)
    v_a, v_b = np.var(values_a, ddof=1) / n_a, np.var(values_b, ddof=1) / n_b
    difference, standard_error = np.mean(values_a) - np.mean(values_b), math.sqrt(v_a + v_b)
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    half_width = stats.t.ppf(1 - alpha / 2, df) * standard_error
    p = 2 * stats.t.sf(abs(difference / standard_error), df)
    return {"difference": difference, "standard error": standard_error, "p-value": p,
            "ci low": difference - half_width, "ci high": difference + half_width}


def test_summarize_runs_gives_mean_and_std_sorted():
    table = summarize_runs(handmade_runs())
    assert list(table.index) == ["c", "a", "b"]
    assert table.loc["a", "test_acc mean"] == pytest.approx(97.2)
    assert table.loc["a", "test_acc std"] == pytest.approx(0.2)  # ddof = 1
    assert table.loc["b", "train_test_gap std"] == pytest.approx(0.1) and (table["runs"] == 3).all()


@pytest.mark.parametrize(
    ("values_a", "values_b"),
    [
        ([97.0, 97.4], [96.0, 96.2]),  # two seeds: df = 1.47
        ([97.0, 97.2, 97.4], [96.0, 96.1, 96.2]),  # three seeds: df = 2.94
        ([97.0, 97.2, 97.4], [96.8, 97.5]),  # unequal counts
    ],
)
def test_compare_pair_is_welchs_test(values_a, values_b):
    runs = pd.DataFrame({"variant": ["a"] * len(values_a) + ["b"] * len(values_b), "test_acc": values_a + values_b})
    comparison, expected = compare_pair(runs, "a", "b"), welch_by_hand(values_a, values_b)
    for key, value in expected.items():
        assert comparison[key] == pytest.approx(value, rel=1e-9), key
    assert comparison["differs"] == (expected["p-value"] < 0.05)
    wider = compare_pair(runs, "a", "b", alpha=0.01)
    assert wider["ci high"] - wider["ci low"] > comparison["ci high"] - comparison["ci low"]


def test_known_answers_with_two_and_three_seeds():
    runs = handmade_runs()
    clear = compare_pair(runs, "a", "b")  # t = 1.1 / sqrt(0.05 / 3) = 8.52 with 2.94 df
    assert clear["standard error"] == pytest.approx(math.sqrt(0.05 / 3))
    assert clear["differs"] and 0.003 < clear["p-value"] < 0.004
    assert "rejects equal means at the 5% level" in describe_pair(clear)
    close = compare_pair(runs, "a", "c")
    assert close["difference"] == pytest.approx(-0.1) and not close["differs"]
    assert close["ci low"] < 0 < close["ci high"]
    assert "cannot tell the two apart" in describe_pair(close)
    two_seeds = compare_pair(runs[runs.index % 3 != 1], "a", "b")  # 97.0, 97.4 vs 96.0, 96.2: t = 4.92, df = 1.47
    assert two_seeds["difference"] == pytest.approx(1.1) and not two_seeds["differs"]  # too few seeds to resolve


def test_more_seeds_resolve_the_same_difference():
    # The same means and spreads: the old 2-sigma rule gave the same answer for any count; the t-test does not.
    rng = np.random.default_rng(0)
    base = rng.standard_normal(30)
    standardized = (base - base.mean()) / base.std(ddof=1)
    verdicts = {}
    for count in (3, 30):
        sample = standardized[:count]
        sample = (sample - sample.mean()) / sample.std(ddof=1)  # mean 0, std 1 exactly
        runs = pd.DataFrame({"variant": ["a"] * count + ["b"] * count, "test_acc": [*sample + 1.0, *sample]})
        verdicts[count] = compare_pair(runs, "a", "b")["differs"]  # a true 1-sigma difference
    assert verdicts == {3: False, 30: True}


def test_compare_variants_covers_every_pair_larger_mean_first():
    table = compare_variants(handmade_runs())
    assert len(table) == 3 and (table["difference"] >= 0).all()
    assert set(zip(table["a"], table["b"], strict=True)) == {("a", "b"), ("c", "b"), ("c", "a")}
    assert table["p-value"].is_monotonic_increasing
    assert table["differs"].tolist() == [True, True, False]
    text = describe_comparisons(table)
    assert text.startswith("2 of 3 pairs differ at the 5% level") and "c vs a (+0.10" in text


@pytest.mark.parametrize("num_seeds", [2, 3, 10])
def test_detectable_difference_is_detected_with_80_percent_power(num_seeds):
    difference = detectable_difference(1.0, num_seeds)
    rng = np.random.default_rng(1)  # other draws than the function's own
    a = rng.standard_normal((20000, num_seeds)) + difference
    b = rng.standard_normal((20000, num_seeds))
    detected = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert detected == pytest.approx(0.8, abs=0.015)  # the binomial standard error is 0.003
    assert detectable_difference(2.0, num_seeds) == pytest.approx(2 * difference)


def test_detectable_difference_shrinks_with_seeds_like_one_over_root_n():
    large = detectable_difference(1.0, 100)
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(2 / 100)  # the large-sample formula
    assert large == pytest.approx(normal, rel=0.03)
    assert detectable_difference(1.0, 2) > detectable_difference(1.0, 3) > detectable_difference(1.0, 30)
    with pytest.raises(ValueError, match="num_seeds"):
        detectable_difference(1.0, 1)


@pytest.mark.parametrize("num_seeds", [2, 3, 5])
def test_one_more_run_lands_in_the_prediction_interval_95_percent_of_the_time(num_seeds):
    rng = np.random.default_rng(2)
    trials = 4000
    samples, new_runs = rng.normal(97.0, 0.3, (trials, num_seeds)), rng.normal(97.0, 0.3, trials)
    inside = [low <= new <= high for sample, new in zip(samples, new_runs, strict=True)
              for low, high in [prediction_interval(sample)]]
    assert np.mean(inside) == pytest.approx(0.95, abs=0.012)  # binomial standard error 0.0034
    low, high = prediction_interval([1.0, 3.0])  # mean 2, std sqrt(2), t(0.975, 1) = 12.71
    assert (high - low) / 2 == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) * math.sqrt(1.5))
    with pytest.raises(ValueError, match="len"):
        prediction_interval([1.0])


def test_judge_claim_reads_the_verdict_against_the_claim():
    runs = handmade_runs()
    a_above_b, a_near_c = compare_pair(runs, "a", "b"), compare_pair(runs, "a", "c")
    assert judge_claim(a_above_b, "higher") == "supported"
    assert judge_claim(a_above_b, "lower") == "at odds with our runs"
    assert judge_claim(a_above_b, "same") == "at odds with our runs"
    assert judge_claim(a_near_c, "same") == "consistent with our runs"
    assert judge_claim(a_near_c, "lower") == "not resolved"
    with pytest.raises(ValueError, match="expected"):
        judge_claim(a_near_c, 1)


def gap_runs(gaps_a, gaps_b):
    return pd.DataFrame({"variant": ["a"] * len(gaps_a) + ["b"] * len(gaps_b), "train_test_gap": gaps_a + gaps_b})


@pytest.mark.parametrize(
    ("gaps_a", "gaps_b", "expected", "verdict"),
    [
        ([0.5, 0.6, 0.7], [2.0, 2.5, 3.0], "lower", "supported"),  # both overfit: a less
        ([-0.5, -0.6, -0.7], [2.0, 2.5, 3.0], "lower", "no overfitting to compare"),  # mixed
        ([-2.0, -2.5, -3.0], [-0.5, -0.6, -0.7], "lower", "no overfitting to compare"),  # both negative
        ([-2.0, -2.5, -3.0], [-0.5, -0.6, -0.7], "same", "no overfitting to compare"),
    ],
)
def test_gap_claims_compare_only_positive_gaps(gaps_a, gaps_b, expected, verdict):
    assert judge_claim(compare_pair(gap_runs(gaps_a, gaps_b), "a", "b", "train_test_gap"), expected) == verdict


def test_gap_sentence_compares_only_positive_gaps():
    sentence = describe_gap_change(2.0, 1.0, "dropout")
    assert sentence == "In this run dropout made the gap smaller (+2.00 without, +1.00 with dropout, in points)."
    assert "not smaller" in describe_gap_change(1.0, 2.0, "dropout")
    assert describe_gap_change(-0.2, -1.0, "dropout").startswith("Neither gap is positive")
    assert describe_gap_change(1.5, -0.3, "dropout").startswith("Only the run without dropout has a positive gap")
    assert describe_gap_change(-0.3, 1.5, "dropout").startswith("Only the run with dropout has a positive gap")
    for without, with_ in [(1.5, -0.3), (-0.3, 1.5), (-0.2, -1.0), (0.0, 2.0)]:
        sentence = describe_gap_change(without, with_, "dropout")
        assert "overfitting to compare" in sentence and "smaller" not in sentence


def test_claims_are_judged_and_each_pair_counted_once():
    claims = [
        Claim("a equals c", "a", "c"),
        Claim("a beats b", "a", "b", expected="higher"),
        Claim("a overfits less than b", "a", "b", metric="train_test_gap", expected="lower"),
        Claim("c beats a", "c", "a", expected="higher", asked_by="us"),  # the pair of the first claim again
    ]
    judged = judge_claims(claims, handmade_runs())
    assert judged["verdict"].tolist() == [
        "consistent with our runs", "supported", "at odds with our runs", "not resolved"]
    assert judged["asked by"].tolist() == ["lecture", "lecture", "lecture", "us"]
    line = describe_claim(judged.iloc[3], caveat="caveat: short runs")
    assert line.startswith("- **c beats a** (our own question): not resolved (caveat: short runs). c (97.30) vs a")
    lecture_line = describe_claim(judged.iloc[0])
    assert lecture_line.startswith("- **a equals c** (the lecture's claim): consistent with our runs. a (97.20)")
    counts = tally_verdicts(judged)
    assert counts.sum() == 3 and counts["not resolved"] == 0  # the repeated pair counts once, as first judged
    with pytest.raises(ValueError, match="expected"):
        Claim("x", "a", "b", expected="+1")
    with pytest.raises(ValueError, match="asked_by"):
        Claim("x", "a", "b", asked_by="me")


def test_run_caveat_names_short_runs_and_fallback_data():
    assert run_caveat(50, fallback=False) == ""
    assert "2-epoch runs on full MNIST" in run_caveat(2, fallback=False)
    assert "50-epoch runs on the small fallback sample" in run_caveat(50, fallback=True)


def test_one_seed_is_not_enough_for_a_spread():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        summarize_runs(handmade_runs().iloc[:7])
    with pytest.raises(ValueError, match="not in runs"):
        compare_pair(handmade_runs(), "a", "z")


def test_the_core_modules_do_not_import_matplotlib():
    code = "import sys, bnlib.models, bnlib.train, bnlib.studies.significance; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
