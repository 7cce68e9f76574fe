"""Small grids of runs with known answers for the statistics tests: three variants, three seeds each."""

import pandas as pd


def handmade_runs():
    """a and c are 0.1 apart with std 0.2; b is 1.1 below a with std 0.1. Gaps: a and b positive, c negative."""
    return pd.DataFrame(
        {
            "variant": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "test_acc": [97.0, 97.2, 97.4, 96.0, 96.1, 96.2, 97.1, 97.3, 97.5],
            "train_valid_gap": [2.0, 2.5, 3.0, 0.5, 0.6, 0.7, -1.0, -0.5, -0.6],
        }
    )
