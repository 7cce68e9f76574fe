"""Pandas tables that sum up training runs."""

import pandas as pd


def summarize_histories(histories):
    """One row per run of a {name: History} dict: final train/valid/test accuracy (%), gap and seconds per epoch."""
    rows = {
        name: {
            "train acc (%)": history.train_acc[-1],
            "valid acc (%)": history.valid_acc[-1],
            "test acc (%)": history.test_acc,
            "train - test gap": history.train_acc[-1] - history.test_acc if history.test_acc is not None else None,
            "s / epoch": sum(history.epoch_seconds) / len(history.epoch_seconds),
            "epochs": len(history.train_acc),
        }
        for name, history in histories.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)
