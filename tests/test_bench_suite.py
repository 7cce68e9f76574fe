"""bench.suite: cell times from nbclient's metadata, the floor notebook, the per-notebook table (no timings)."""

import nbformat

from bench.report import render_markdown, suite_table, target_checks
from bench.suite import FLOOR_CELLS, cell_seconds, write_floor_notebook


def executed_notebook():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("a = 1"),
        nbformat.v4.new_code_cell("b = 2"),
        nbformat.v4.new_code_cell("never run"),
    ])  # fmt: skip
    notebook.cells[1].metadata["execution"] = {
        "iopub.execute_input": "2026-11-26T14:03:55.053113Z", "shell.execute_reply": "2026-11-26T14:03:55.553113Z"}
    notebook.cells[2].metadata["execution"] = {
        "iopub.execute_input": "2026-11-26T14:03:59.000000Z", "shell.execute_reply": "2026-11-26T14:04:01.250000Z"}
    return notebook


def test_cell_seconds_reads_nbclient_timing():
    assert cell_seconds(executed_notebook()) == {1: 0.5, 2: 2.25}  # the markdown and the unrun cell have none


def test_floor_notebook_imports_bnlib_and_loads_mnist(tmp_path):
    notebook = nbformat.read(write_floor_notebook(tmp_path), as_version=4)
    assert [cell.source for cell in notebook.cells] == list(FLOOR_CELLS)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(notebook)


def test_suite_table_and_warm_targets():
    results = {
        "machine": {"cpu_count": 2, "torch": "2.x", "torch_threads": 1, "device": "cpu"},
        "data": {"source": "MNIST"},
        "command": "python -m bench.run",
        "suite_per_notebook_s": {"full_suite_warm_s": {"01.ipynb": 9.0, "02.ipynb": 12.0}},
        "suite_cell_s_per_notebook": {"full_suite_warm_s": {"01.ipynb": 4.0, "02.ipynb": 8.0}},
        "warm_cell_s_per_notebook": 6.0,
        "slowest_cell_warm_s": 5.5,
        "slowest_cell_warm": {"notebook": "02.ipynb", "cell": 9, "seconds": 5.5},
    }
    table = suite_table(results)
    assert "| 02.ipynb | 12 | 8 |" in table and "02.ipynb, cell 9" in table
    checks = {check["key"]: check["met"] for check in target_checks(results)}
    assert checks["warm_cell_s_per_notebook"] is True and checks["slowest_cell_warm_s"] is False
    assert table in render_markdown(results)
    assert suite_table({}) is None
