"""Claims about variants judged against a grid of runs: equivalence for "no difference", Welch for a direction,
Holm's correction over all the claims' tests, and how many seeds would resolve what stays open.

A claim of "no difference" gets two tests: Welch's (are the means different?) and the equivalence
test (is the difference inside ±margin?). Its verdict is "equivalent within ±margin points",
"different", or "not resolved: the runs allow differences up to ±X points". A claimed direction
is "supported", "not resolved" or "at odds with our runs". Every test of every claim is one family
(a test asked twice counts once), Holm-adjusted; each verdict comes with the interval at the level
at which Holm's procedure judged its test, so interval and verdict always agree.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bnlib.checks import check_choice, check_number
from bnlib.config import FULL
from bnlib.studies.equivalence import (
    MAX_SEEDS,
    equivalence_interval,
    equivalence_test,
    seeds_to_detect,
    seeds_to_resolve,
)
from bnlib.studies.families import holm_adjust, holm_levels
from bnlib.studies.overfitting import gaps_show_overfitting
from bnlib.studies.welch import ALPHA, POWER, compare_pair, confidence_interval, pooled_std

EXPECTATIONS = ("same", "higher", "lower")  # what a claim says of a vs b (or of a vs 0)
SOURCES = {  # who made a claim -> how its line names it
    "lecture": "the lecture's claim",
    "dropout notebook": "from the course's dropout notebook, not this lecture",
    "us": "our own question",
}
OUTCOMES = ("equivalent", "different", "supported", "not resolved", "at odds with our runs",
            "no overfitting to compare")  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """A statement about variant `a` and variant `b` (None: the number 0) on `metric`: a is the "same" as, "higher"
    or "lower" than b. `asked_by` is a key of SOURCES; `mechanism` holds one-line reasons shown with the verdict."""

    text: str
    a: str
    b: str | None
    metric: str = "test_acc"
    expected: str = "same"
    asked_by: str = "lecture"
    mechanism: tuple = ()

    def __post_init__(self):
        check_choice("expected", self.expected, EXPECTATIONS)
        check_choice("asked_by", self.asked_by, tuple(SOURCES))


def _pair_key(claim):
    return frozenset((claim.a, claim.b)), claim.metric


def _family(claims, comparisons, margin, alpha):
    """{(pair key, "differ" or "equivalent"): p-value} over all claims: the family Holm's correction runs over."""
    tests = {}
    for claim, comparison in zip(claims, comparisons, strict=True):
        tests[(_pair_key(claim), "differ")] = comparison["p-value"]
        if claim.expected == "same":
            tests[(_pair_key(claim), "equivalent")] = equivalence_test(comparison, margin, alpha)["equivalence p-value"]
    return tests


def _same_verdict(comparison, margin, differ, equivalent, alpha):
    """(outcome, verdict, interval level, low, high) of a "no difference" claim from its two Holm-judged tests."""
    (differ_p, differ_level), (equivalent_p, equivalent_level) = differ, equivalent
    low, high = equivalence_interval(comparison, equivalent_level)
    if equivalent_p < alpha:
        return "equivalent", f"equivalent within ±{margin:g} points", 1 - 2 * equivalent_level, low, high
    if differ_p < alpha:
        return ("different", "different", 1 - differ_level,
                *confidence_interval(comparison, 1 - differ_level))  # fmt: skip
    allowed = max(abs(low), abs(high))
    return ("not resolved", f"not resolved: the runs allow differences up to ±{allowed:.2f} points",
            1 - 2 * equivalent_level, low, high)  # fmt: skip


def _direction_verdict(claim, comparison, differ, alpha):
    """(outcome, verdict, interval level, low, high) of a claimed direction, or of gaps with nothing to compare."""
    differ_p, level = differ
    interval = (1 - level, *confidence_interval(comparison, 1 - level))
    if claim.metric.endswith("_gap") and claim.b is not None and not gaps_show_overfitting(
        comparison["mean a"], comparison["mean b"]
    ):
        return "no overfitting to compare", "no overfitting to compare", *interval
    if differ_p >= alpha:
        return "not resolved", "not resolved", *interval
    outcome = "supported" if (comparison["difference"] > 0) == (claim.expected == "higher") else "at odds with our runs"
    return outcome, outcome, *interval


def judge_claims(claims, runs, margin, alpha=ALPHA):
    """One row per claim: who asked, Welch's comparison, the equivalence test ("same" claims), the Holm-adjusted
    p-values, the outcome (one of OUTCOMES), the verdict's wording and its interval (`interval level`, low, high)."""
    check_number("margin", margin, 0, None, low_open=True)
    comparisons = [compare_pair(runs, claim.a, claim.b, claim.metric, alpha) for claim in claims]
    tests = _family(claims, comparisons, margin, alpha)
    p_values = np.array(list(tests.values()))
    judged = dict(zip(tests, zip(holm_adjust(p_values), holm_levels(p_values, alpha), strict=True), strict=True))
    rows = []
    for claim, comparison in zip(claims, comparisons, strict=True):
        differ = judged[(_pair_key(claim), "differ")]
        if claim.expected == "same":
            equivalent = judged[(_pair_key(claim), "equivalent")]
            result = _same_verdict(comparison, margin, differ, equivalent, alpha)
        else:
            equivalent = (np.nan, np.nan)  # a claimed direction has no equivalence test
            result = _direction_verdict(claim, comparison, differ, alpha)
        rows.append({"claim": claim.text, "asked by": claim.asked_by, "mechanism": claim.mechanism, **comparison,
                     "margin": margin, "Holm p (differ)": differ[0], "Holm p (equivalent)": equivalent[0],
                     "family size": len(tests),
                     **dict(zip(("outcome", "verdict", "interval level", "interval low", "interval high"), result,
                                strict=True))})  # fmt: skip
    return pd.DataFrame(rows)


def _percent(level):
    return f"{100 * level:.1f}".removesuffix(".0") + "%"


def describe_claim(judged_row, caveat=""):
    """Markdown for one row of `judge_claims`' table: the claim, who made it, the verdict with its interval and
    Holm-adjusted p-value (and `caveat`), then one line per mechanism."""
    row = judged_row
    verdict = f"{row['verdict']} ({caveat})" if caveat else row["verdict"]
    second = "0" if pd.isna(row["b"]) else f"{row['b']} ({row['mean b']:.2f})"
    if pd.notna(row["Holm p (equivalent)"]) and row["outcome"] != "different":
        test, p_value = "equivalence test", row["Holm p (equivalent)"]
    else:
        test, p_value = "Welch's test", row["Holm p (differ)"]
    line = (f"- **{row['claim']}** ({SOURCES[row['asked by']]}): **{verdict}**. {row['a']} ({row['mean a']:.2f}) − "
            f"{second} = {row['difference']:+.2f} points, {_percent(row['interval level'])} interval "
            f"[{row['interval low']:+.2f}, {row['interval high']:+.2f}] ({test}, Holm-adjusted p = {p_value:.3f}).")
    if row["outcome"] == "equivalent" and row["Holm p (differ)"] < row["alpha"]:
        line += " The difference is smaller than the margin but also distinguishable from 0."
    if row["metric"].endswith("_gap") and pd.isna(row["b"]) and row["outcome"] != "equivalent" and row["mean a"] < 0:
        line += (" A gap below 0 is not overfitting: the validation images are easier for these models than their "
                 "training images.")
    return "\n".join([line, *(f"  - Why: {reason}" for reason in row["mechanism"])])


def verdict_line(judged_row):
    """One plain-text line for a row of `judge_claims`' table: verdict, claim, difference and its interval."""
    row = judged_row
    second = "0" if pd.isna(row["b"]) else row["b"]
    return (f"{row['verdict']}: {row['claim']} ({row['a']} − {second}: {row['difference']:+.2f}, "
            f"{_percent(row['interval level'])} interval [{row['interval low']:+.2f}, {row['interval high']:+.2f}])")


def tally_verdicts(judged):
    """Outcome counts over `judge_claims`' table with each (pair of variants, metric) counted once, at its first row."""
    pairs = [(frozenset((row.a, None if pd.isna(row.b) else row.b)), row.metric) for row in judged.itertuples()]
    first = ~pd.Series(pairs, index=judged.index).duplicated()
    return judged.loc[first, "outcome"].value_counts().reindex(OUTCOMES, fill_value=0)


def seeds_to_settle(judged, runs, power=POWER):
    """Seeds per variant that would settle each "not resolved" claim `power` of the time, if the true difference
    were the observed one and the spread the pooled std of its metric, even at Holm's strictest level α / m:
    equivalence while |difference| < margin, else a difference. A table; None: more than MAX_SEEDS."""
    rows = []
    for _, row in judged[judged["outcome"] == "not resolved"].iterrows():
        std, level = pooled_std(runs, row["metric"]), row["alpha"] / row["family size"]
        if pd.notna(row["Holm p (equivalent)"]) and abs(row["difference"]) < row["margin"]:
            goal, seeds = "equivalent", seeds_to_resolve(row["difference"], std, row["margin"], level, power,
                                                         one_sample=pd.isna(row["b"]))  # fmt: skip
        else:
            goal, seeds = "different", seeds_to_detect(row["difference"], std, level, power,
                                                       one_sample=pd.isna(row["b"]))  # fmt: skip
        rows.append({"claim": row["claim"], "difference": row["difference"], "pooled std": std, "to show": goal,
                     "seeds per variant": seeds})  # fmt: skip
    return pd.DataFrame(rows, columns=["claim", "difference", "pooled std", "to show", "seeds per variant"])


def describe_open_claims(table, power=POWER):
    """Markdown from `seeds_to_settle`' table: one line per open claim, with the seeds per variant to settle it."""
    if table.empty:
        return "No claim is left open."
    lines = [f"Seeds per variant that would settle each open claim {power:.0%} of the time, if the true difference "
             "were the one observed and the spread the pooled std (at Holm's strictest level, α / number of tests):"]
    for _, row in table.iterrows():
        seeds = f"more than {MAX_SEEDS}" if pd.isna(row["seeds per variant"]) else f"{int(row['seeds per variant'])}"
        goal = "equivalence" if row["to show"] == "equivalent" else "a difference"
        lines.append(f"- {row['claim']}: {seeds} seeds per variant, to show {goal} (observed "
                     f"{row['difference']:+.2f}, pooled std {row['pooled std']:.3f}).")  # fmt: skip
    return "\n".join(lines)


def run_caveat(num_epochs, fallback):
    """What verdicts from runs unlike the lecture's (fewer epochs, or the fallback data) must say; "" for full runs."""
    if num_epochs >= FULL.num_epochs and not fallback:
        return ""
    data = "the small fallback sample" if fallback else "full MNIST"
    return f"caveat: from {num_epochs}-epoch runs on {data}, not the lecture's {FULL.num_epochs} epochs on full MNIST"
