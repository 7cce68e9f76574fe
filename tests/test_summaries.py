"""bnlib.studies.summaries: the summary row of a run is read from its history; one set of labels for every table."""

import pandas as pd
import pytest

from bnlib.studies.summaries import describe_pair, describe_power, format_mean_std, summarize_histories, summarize_runs
from bnlib.studies.welch import compare_pair
from bnlib.train import History
from tests.support.significance_runs import handmade_runs


def test_summary_reads_final_values():  # notebooks 01 and 02 read these labels: they must not change
    history = History(train_acc=[90.0, 99.5], valid_acc=[89.0, 97.0], epoch_seconds=[2.0, 4.0], test_acc=97.25)
    table = summarize_histories(
        {
            "run": history,
            "unfinished": History(train_acc=[50.0], valid_acc=[40.0], epoch_seconds=[1.0], interrupted=True),
        }
    )
    row = table.loc["run"]
    assert row["train acc (%)"] == 99.5 and row["valid acc (%)"] == 97.0 and row["test acc (%)"] == 97.25
    assert row["train - valid gap"] == pytest.approx(2.5) and row["s / epoch"] == 3.0 and row["epochs"] == 2
    assert "train - test gap" not in table.columns  # overfitting is train - validation
    assert table.loc["unfinished"].isna()["test acc (%)"] and table.loc["unfinished", "train - valid gap"] == 10.0


def test_summarize_runs_gives_mean_and_std_sorted():
    table = summarize_runs(handmade_runs())
    assert list(table.index) == ["c", "a", "b"]
    assert table.loc["a", "test_acc mean"] == pytest.approx(97.2)
    assert table.loc["a", "test_acc std"] == pytest.approx(0.2)  # ddof = 1
    assert table.loc["b", "train_valid_gap std"] == pytest.approx(0.1) and (table["runs"] == 3).all()
    assert list(summarize_runs(handmade_runs(), sort_by="train_valid_gap").index) == ["c", "b", "a"]  # smallest first
    with pytest.raises(ValueError, match="at least 2 seeds"):
        summarize_runs(handmade_runs().iloc[:7])


def test_the_grid_table_labels_a_metric_as_the_run_summary_does():
    runs = pd.DataFrame({"variant": ["a", "a"], "test_acc": [97.0, 98.0], "train_valid_gap": [1.0, 2.0]})
    table = format_mean_std(summarize_runs(runs))
    assert list(table.columns) == ["test acc (%)", "train - valid gap", "runs"]
    assert table.loc["a", "test acc (%)"] == "97.50 ± 0.71"


def test_describe_pair():
    runs = handmade_runs()
    assert "rejects equal means at the 5% level" in describe_pair(compare_pair(runs, "a", "b"))
    assert "cannot tell the two apart" in describe_pair(compare_pair(runs, "a", "c"))
    assert describe_pair(compare_pair(runs, "a", None)).startswith("a (97.20) vs 0: difference +97.20 points")


def test_describe_power_is_a_power_statement():
    # The full run's pooled std, 0.146 points, with 3 seeds: 0.51 points found 80 % of the time, half that ~30 %.
    sentence = describe_power(0.146, 3)
    assert sentence == ("With 3 seeds per variant and a seed-to-seed std of 0.146 points, one Welch test at the 5% "
                        "level detects a true difference of 0.51 points 80% of the time; one half that size "
                        "(0.26 points) about 30% of the time.")
