"""Running a notebook as the notebook tests do: a fresh python3 kernel, in quick mode, with the Agg backend."""

import os

from nbclient import NotebookClient

from bnlib.config import QUICK_ENV


def execute_in_quick_mode(notebook, folder, timeout=600):
    """Run every cell of `notebook` (changed in place, outputs filled) in a kernel started in `folder`.

    The kernel gets this process's environment (so the session's BNLIB_CACHE_DIR and BNLIB_DATA_DIR) with
    BNLIB_QUICK=1 and MPLBACKEND=Agg. Raises CellExecutionError, with the cell and traceback, on any error.
    """
    env = os.environ | {QUICK_ENV: "1", "MPLBACKEND": "Agg"}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)
    return notebook
