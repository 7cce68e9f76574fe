"""Every notebook runs top to bottom in quick mode from a fresh kernel, and is committed without outputs."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from bnlib.cache import CACHE_DIR_ENV
from tests.support.execution import execute_in_quick_mode
from tests.support.tools import load_tool

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

pytestmark = pytest.mark.slow  # a kernel per notebook: `make test`, not `make test-fast`


def test_the_kernel_uses_the_session_cache(tmp_path):
    notebook = new_notebook(cells=[new_code_cell(f"import os; print(os.environ[{CACHE_DIR_ENV!r}])")])
    (output,) = execute_in_quick_mode(notebook, tmp_path).cells[0].outputs
    assert output["text"].strip() == os.environ[CACHE_DIR_ENV]  # set by tests/conftest.py


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec metadata missing"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} holds outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_imports_sit_in_one_short_cell_at_the_top(path):
    # The Colab set-up cell before it is the same in every notebook (tools/stamp_colab.py, tests/test_colab.py).
    is_setup_cell = load_tool("stamp_colab").is_setup_cell
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells
            if cell.cell_type == "code" and not is_setup_cell(cell)]
    importing = [index for index, source in enumerate(code) if re.search(r"^(import |from \S+ import )", source, re.M)]
    assert importing == [0], f"{path.name}: code cells {importing} import; only the first code cell may"
    imports = [line for line in code[0].splitlines() if line.strip() and not line.startswith(("backend", "#"))]
    assert len(imports) <= 14, f"{path.name}: {len(imports)} import lines; import modules, not long name lists"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    notebook = execute_in_quick_mode(nbformat.read(path, as_version=4), NOTEBOOK_DIR)
    nbformat.write(notebook, tmp_path / path.name)  # keep the executed copy for a look when debugging
    # The committed notebooks are the instructor edition: every exercise check passes with its solution.
    results = [output["data"]["text/plain"] for cell in notebook.cells for output in cell.get("outputs", [])
               if re.match(r"(passed|failed|not attempted): check_", output.get("data", {}).get("text/plain", ""))]
    calls = re.findall(r"^check_\w+\(", "\n".join(cell.source for cell in notebook.cells), re.MULTILINE)
    assert len(results) == len(calls), f"{path.name}: {len(calls)} exercise checks, {len(results)} results"
    unsolved = [result for result in results if not result.startswith("passed")]
    assert not unsolved, f"{path.name}: exercise checks that did not pass:\n" + "\n".join(unsolved)
