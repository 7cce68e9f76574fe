"""Pandas tables that sum up training runs."""

import pandas as pd

# A run's numbers (History.final_numbers() and the grid's best_valid_acc) -> how tables and figures label them.
# Notebooks 01 and 02 read their tables by these labels.
METRIC_LABELS = {
    "final_train_acc": "train acc (%)",
    "final_valid_acc": "valid acc (%)",
    "best_valid_acc": "best valid acc (%)",
    "test_acc": "test acc (%)",
    "train_test_gap": "train - test gap",
    "seconds_per_epoch": "s / epoch",
    "epochs": "epochs",
}


def summarize_histories(histories):
    """One row per run of a {name: History} dict: final train/valid/test accuracy (%), gap and seconds per epoch."""
    rows = {name: history.final_numbers() for name, history in histories.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename(columns=METRIC_LABELS).round(2)
