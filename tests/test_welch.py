"""bnlib.studies.welch: Welch's t-test between variants, its real error rate, its power and the prediction interval."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnlib.studies.welch import (
    compare_pair,
    detectable_difference,
    detection_probability,
    false_alarm_rate,
    pooled_std,
    prediction_factor,
    prediction_interval,
)
from tests.support.significance_runs import handmade_runs


def welch_by_hand(values_a, values_b, alpha=0.05):
    """Welch's test written out: t, Welch–Satterthwaite df, two-sided p and the confidence interval."""
    n_a, n_b = len(values_a), len(values_b)
    v_a, v_b = np.var(values_a, ddof=1) / n_a, np.var(values_b, ddof=1) / n_b
    difference, standard_error = np.mean(values_a) - np.mean(values_b), math.sqrt(v_a + v_b)
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    half_width = stats.t.ppf(1 - alpha / 2, df) * standard_error
    p = 2 * stats.t.sf(abs(difference / standard_error), df)
    return {"difference": difference, "standard error": standard_error, "df": df, "p-value": p,
            "ci low": difference - half_width, "ci high": difference + half_width}  # fmt: skip


def two_variants(values_a, values_b):
    return pd.DataFrame({"variant": ["a"] * len(values_a) + ["b"] * len(values_b), "test_acc": values_a + values_b})


@pytest.mark.parametrize(
    ("values_a", "values_b"),
    [
        ([97.0, 97.4], [96.0, 96.2]),  # two seeds: df = 1.47
        ([97.0, 97.2, 97.4], [96.0, 96.1, 96.2]),  # three seeds: df = 2.94
        ([97.0, 97.2, 97.4], [96.8, 97.5]),  # unequal counts
    ],
)
def test_compare_pair_is_welchs_test(values_a, values_b):
    runs = two_variants(values_a, values_b)
    comparison, expected = compare_pair(runs, "a", "b"), welch_by_hand(values_a, values_b)
    for key, value in expected.items():
        assert comparison[key] == pytest.approx(value, rel=1e-9), key
    scipy_test = stats.ttest_ind(values_a, values_b, equal_var=False)
    assert comparison["p-value"] == pytest.approx(scipy_test.pvalue, rel=1e-9)
    assert comparison["differs"] == (expected["p-value"] < 0.05)
    wider = compare_pair(runs, "a", "b", alpha=0.01)
    assert wider["ci high"] - wider["ci low"] > comparison["ci high"] - comparison["ci low"]


def test_without_a_second_variant_the_mean_is_compared_with_zero():
    runs = pd.DataFrame({"variant": ["a"] * 4, "train_valid_gap": [0.3, 0.5, 0.2, 0.6]})
    comparison = compare_pair(runs, "a", None, "train_valid_gap")
    expected = stats.ttest_1samp([0.3, 0.5, 0.2, 0.6], 0.0)
    assert comparison["p-value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert comparison["df"] == 3 and comparison["mean b"] == 0 and comparison["difference"] == pytest.approx(0.4)
    interval = expected.confidence_interval(0.95)
    assert (comparison["ci low"], comparison["ci high"]) == pytest.approx((interval.low, interval.high))


def test_known_answers_with_two_and_three_seeds():
    runs = handmade_runs()
    clear = compare_pair(runs, "a", "b")  # t = 1.1 / sqrt(0.05 / 3) = 8.52 with 2.94 df
    assert clear["standard error"] == pytest.approx(math.sqrt(0.05 / 3))
    assert clear["differs"] and 0.003 < clear["p-value"] < 0.004
    close = compare_pair(runs, "a", "c")
    assert close["difference"] == pytest.approx(-0.1) and not close["differs"]
    assert close["ci low"] < 0 < close["ci high"]
    two_seeds = compare_pair(runs[runs.index % 3 != 1], "a", "b")  # 97.0, 97.4 vs 96.0, 96.2: t = 4.92, df = 1.47
    assert two_seeds["difference"] == pytest.approx(1.1) and not two_seeds["differs"]  # too few seeds to resolve


def test_more_seeds_resolve_the_same_difference():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(30)
    verdicts = {}
    for count in (3, 30):
        sample = base[:count]
        sample = (sample - sample.mean()) / sample.std(ddof=1)  # mean 0, std 1 exactly
        verdicts[count] = compare_pair(two_variants([*sample + 1.0], [*sample]), "a", "b")["differs"]  # 1 sigma apart
    assert verdicts == {3: False, 30: True}


def test_equal_variants_are_called_different_at_most_about_alpha_of_the_time():
    rng = np.random.default_rng(3)  # other draws than the function's own
    for num_seeds, expected in [(2, 0.023), (3, 0.0345), (5, 0.045)]:
        a, b = rng.standard_normal((2, 100_000, num_seeds))
        simulated = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
        rate = false_alarm_rate(num_seeds)
        assert rate == pytest.approx(simulated, abs=0.003) and rate == pytest.approx(expected, abs=0.002)
        assert rate < 0.05  # with few seeds Welch's test is cautious: "at most about alpha"


@pytest.mark.parametrize("num_seeds", [2, 3, 10])
def test_detectable_difference_is_detected_with_80_percent_power(num_seeds):
    difference = detectable_difference(1.0, num_seeds)
    rng = np.random.default_rng(1)  # other draws than the function's own
    a = rng.standard_normal((20000, num_seeds)) + difference
    b = rng.standard_normal((20000, num_seeds))
    detected = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert detected == pytest.approx(0.8, abs=0.015)  # the binomial standard error is 0.003
    assert detectable_difference(2.0, num_seeds) == pytest.approx(2 * difference)
    assert detection_probability(difference, 1.0, num_seeds) == pytest.approx(0.8, abs=0.002)


def test_detectable_difference_shrinks_with_seeds_like_one_over_root_n():
    large = detectable_difference(1.0, 100)
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(2 / 100)  # the large-sample formula
    assert large == pytest.approx(normal, rel=0.03)
    assert detectable_difference(1.0, 2) > detectable_difference(1.0, 3) > detectable_difference(1.0, 30)
    with pytest.raises(ValueError, match="num_seeds"):
        detectable_difference(1.0, 1)


def test_pooled_std_weighs_each_variance_by_its_degrees_of_freedom():
    runs = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 5, "test_acc": [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 2.0]})
    # a: variance 1 on 2 df; b: variance 0.8 on 4 df -> sqrt((2 * 1 + 4 * 0.8) / 6)
    assert pooled_std(runs) == pytest.approx(math.sqrt(5.2 / 6))


def test_the_pooled_detectable_difference_is_detected_80_percent_of_the_time():
    # Seven variants with one true spread of 0.15 and 3 seeds: each variant's std scatters widely (2 df each),
    # the pooled one (14 df) far less. With a spread built to pool to exactly 0.15, the detectable difference
    # must be found 80 % of the time by 2,000 simulated experiments with that spread.
    rng = np.random.default_rng(4)
    runs = pd.DataFrame({"variant": np.repeat([f"v{index}" for index in range(7)], 3),
                         "test_acc": rng.standard_normal(21)})  # fmt: skip
    runs["test_acc"] *= 0.15 / pooled_std(runs)  # pools to exactly 0.15; each variant's own std still scatters
    std = pooled_std(runs)
    assert std == pytest.approx(0.15)
    difference = detectable_difference(std, 3)
    a = rng.normal(difference, 0.15, (2000, 3))
    b = rng.normal(0.0, 0.15, (2000, 3))
    detected = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert detected == pytest.approx(0.8, abs=0.03)  # binomial standard error 0.009
    assert detection_probability(difference / 2, std, 3) == pytest.approx(0.3, abs=0.03)  # "half that size: ~30 %"


@pytest.mark.parametrize("num_seeds", [2, 3, 5])
def test_one_more_run_lands_in_the_prediction_interval_95_percent_of_the_time(num_seeds):
    rng = np.random.default_rng(2)
    trials = 4000
    samples, new_runs = rng.normal(97.0, 0.3, (trials, num_seeds)), rng.normal(97.0, 0.3, trials)
    inside = [low <= new <= high for sample, new in zip(samples, new_runs, strict=True)
              for low, high in [prediction_interval(sample)]]  # fmt: skip
    assert np.mean(inside) == pytest.approx(0.95, abs=0.012)  # binomial standard error 0.0034
    low, high = prediction_interval([1.0, 3.0])  # mean 2, std sqrt(2), t(0.975, 1) = 12.71
    assert (high - low) / 2 == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) * math.sqrt(1.5))
    with pytest.raises(ValueError, match="len"):
        prediction_interval([1.0])


def test_with_three_seeds_the_prediction_interval_is_about_five_stds_wide_each_side():
    assert prediction_factor(3) == pytest.approx(4.97, abs=0.01)  # t(0.975, 2) = 4.30, times sqrt(4/3)
    assert prediction_factor(5) == pytest.approx(3.04, abs=0.01)


def test_one_seed_is_not_enough_for_a_spread():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare_pair(handmade_runs().iloc[:7], "a", "b")
    with pytest.raises(ValueError, match="not in runs"):
        compare_pair(handmade_runs(), "a", "z")


def test_the_statistics_modules_do_not_import_matplotlib():
    modules = ", ".join(f"bnlib.studies.{name}" for name in
                        ("welch", "families", "equivalence", "claims", "overfitting", "summaries"))  # fmt: skip
    code = f"import sys, bnlib.models, bnlib.train, {modules}; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
