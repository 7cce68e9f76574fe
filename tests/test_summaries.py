"""bnlib.studies.significance: the summary row of a run is read from its history; one set of labels for every table."""

import pandas as pd
import pytest

from bnlib.studies.significance import format_mean_std, summarize_histories, summarize_runs
from bnlib.train import History


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
    assert row["train - test gap"] == pytest.approx(2.25) and row["s / epoch"] == 3.0 and row["epochs"] == 2
    assert table.loc["unfinished"].isna()["test acc (%)"]


def test_the_grid_table_labels_a_metric_as_the_run_summary_does():
    runs = pd.DataFrame({"variant": ["a", "a"], "test_acc": [97.0, 98.0], "train_test_gap": [1.0, 2.0]})
    table = format_mean_std(summarize_runs(runs))
    assert list(table.columns) == ["test acc (%)", "train - test gap", "runs"]
    assert table.loc["a", "test acc (%)"] == "97.50 ± 0.71"
