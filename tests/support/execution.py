"""Running a notebook as the notebook tests do: a fresh python3 kernel, in quick mode, with the Agg backend."""

import os
import re

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


CHECK_CALL = re.compile(r"\b(check_\w+)\(")  # an exercise check called in a notebook: check_batchnorm_train(...)


def assert_every_check_not_attempted(notebook, label):
    """Every exercise check the executed `notebook` calls says "not attempted" and none passed or failed: a student
    edition holds stubs, not answers."""
    checks = set(CHECK_CALL.findall("\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")))
    reported = "\n".join(output.get("data", {}).get("text/plain", "") for cell in notebook.cells
                         if cell.cell_type == "code" for output in cell.outputs)
    assert checks
    for check in checks:
        assert f"not attempted: {check}" in reported, f"{label}: {check} did not say 'not attempted'"
    assert not re.search(r"(passed|failed): check_", reported)
