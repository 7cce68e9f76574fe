"""bench.suite and bench.memory: cell times from nbclient's metadata, the floor notebook, the per-notebook table,
and the summed memory of a process tree (no timings)."""

import subprocess
import sys

import nbformat
import psutil
import pytest

from bench.memory import PeakTreeMemory, process_mb, tree_mb
from bench.report import render_markdown, suite_table, target_checks
from bench.suite import CLASS_MEMORY_MB, FLOOR_CELLS, cell_seconds, run_suite, write_floor_notebook


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


HOLD_200_MB = "b = b'x' * (200 * 2**20); print('ready', flush=True); import sys; sys.stdin.read()"  # until stdin closes


def start_tree(child_code):
    """A Python process whose own child runs `child_code`; returns it once the child printed 'ready'."""
    parent_code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child_code!r}])"
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert parent.stdout.readline().strip() == "ready"
    return parent


def test_tree_memory_sums_a_child_that_holds_200_mb():
    parent = start_tree(HOLD_200_MB)
    try:
        with PeakTreeMemory(parent.pid, interval=0.05) as memory:
            process = psutil.Process(parent.pid)
            (child,) = process.children(recursive=True)
            total, own, child_mb = tree_mb(process), process_mb(process), process_mb(child)
    finally:
        parent.stdin.close()
        parent.wait()
    assert 200 <= child_mb < 260  # 200 MB of bytes plus an interpreter
    assert total == pytest.approx(own + child_mb, abs=5)  # the tree is the sum of its two processes
    assert memory.peak_mb >= 200 + own - 5  # the sampler saw the child's memory too
    assert tree_mb(process) == 0.0  # a process that has exited holds nothing


SHARE_200_MB = """
import mmap, os, sys
shared = mmap.mmap(-1, 200 * 2**20, flags=mmap.MAP_SHARED)
shared.write(b"x" * len(shared))  # 200 MB resident, shared with the child forked below
if os.fork() == 0:
    sum(shared[i] for i in range(0, len(shared), 4096))  # the child touches every page: they count in its RSS
    print("ready", flush=True)
    sys.stdin.read()
    os._exit(0)
os.wait()
"""


@pytest.mark.skipif(not hasattr(psutil.Process().memory_full_info(), "pss"), reason="no PSS on this platform")
def test_pages_shared_by_two_processes_count_once():
    parent = subprocess.Popen([sys.executable, "-c", SHARE_200_MB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert parent.stdout.readline().strip() == "ready"
        process = psutil.Process(parent.pid)
        members = [process, *process.children(recursive=True)]
        rss_sum = sum(member.memory_info().rss for member in members) / 2**20
        summed = tree_mb(process)
    finally:
        parent.stdin.close()
        parent.wait()
    assert len(members) == 2 and rss_sum >= 400  # each process's RSS holds all 200 MB
    assert 200 <= summed < 260  # PSS gives each process half of the shared pages: 200 MB in all


def test_report_shows_each_notebooks_peak_memory_against_the_target():
    results = {
        "machine": {"cpu_count": 2, "torch": "2.x", "torch_threads": 1, "device": "cpu"},
        "data": {"source": "MNIST"},
        "command": "python -m bench.run",
        "peak_rss_mb_per_notebook": {"quick_suite_s": {"03.ipynb": 900.0}, "full_suite_s": {"03.ipynb": 1620.0}},
        "peak_rss_mb": 1620.0,
        "floor_cell_s": 1.4,
    }
    assert "| 03.ipynb | 900 | 1,620 |" in suite_table(results)
    checks = {check["key"]: check["met"] for check in target_checks(results)}
    assert checks["peak_rss_mb"] is False and checks["floor_cell_s"] is True
    assert "| 1,620 | ≤ 1,500: **missed** |" in render_markdown(results)


@pytest.mark.slow
def test_run_suite_keeps_the_executed_notebooks_where_asked_and_runs_as_a_class_container(tmp_path, monkeypatch):
    monkeypatch.delenv("BNLIB_MEMORY_LIMIT_MB", raising=False)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nprint(os.environ['BNLIB_MEMORY_LIMIT_MB'], os.environ['BNLIB_QUICK'], "
                                  "os.environ['TORCHINDUCTOR_CACHE_DIR'])"),
    ])  # fmt: skip
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "tiny.ipynb")
    run = run_suite(True, tmp_path / "cache", [tmp_path / "tiny.ipynb"], log=lambda _: None, keep_dir=tmp_path / "kept")
    assert run["failed"] == []
    executed = nbformat.read(tmp_path / "kept" / "tiny.ipynb", as_version=4)
    # torch.compile's cache beside the run cache: empty with it, so inductor compiles from scratch as a student's would
    assert executed.cells[0].outputs[0]["text"] == f"{CLASS_MEMORY_MB} 1 {tmp_path / 'cache'}-torchinductor\n"
