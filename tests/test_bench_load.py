"""bench.load's pieces, without kernels: each kernel's environment, the read-only shared cache, and what counts as
a problem (an exit code, an entry trained again, no run read from the shared cache). The run itself: test_load.py."""

import json
import stat
import subprocess
import sys

import nbformat
import pytest

from bench.load import READ_FROM_SHARED, check_kernel, kernel_environment, own_channels, run_kernels, set_read_only
from bench.suite import nbconvert_command
from bnlib.cache import CACHE_DIR_ENV, RETRAIN_ENV, SHARED_CACHE_ENV
from bnlib.config import QUICK_ENV


def test_a_kernel_runs_in_quick_mode_reading_the_shared_cache_first(monkeypatch, tmp_path):
    monkeypatch.setenv(RETRAIN_ENV, "1")
    monkeypatch.setenv(SHARED_CACHE_ENV, "/somewhere/else")
    env = kernel_environment(tmp_path / "personal", tmp_path / "shared")
    assert (env[QUICK_ENV], env[CACHE_DIR_ENV], env[SHARED_CACHE_ENV]) == (
        "1", str(tmp_path / "personal"), str(tmp_path / "shared"))
    assert RETRAIN_ENV not in env  # a retrain would defeat the test
    assert SHARED_CACHE_ENV not in kernel_environment(tmp_path / "shared")  # the warm-up writes its own cache


def test_the_shared_cache_is_made_read_only_and_back(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "entry.json").write_text("{}")
    paths = (tmp_path, tmp_path / "folder", tmp_path / "folder" / "entry.json")
    set_read_only(tmp_path)
    assert [stat.S_IMODE(path.stat().st_mode) for path in paths] == [0o555, 0o555, 0o444]
    set_read_only(tmp_path, False)
    assert [stat.S_IMODE(path.stat().st_mode) for path in paths] == [0o755, 0o755, 0o644]


def kernel(tmp_path, outputs, entries=()):
    personal = tmp_path / "cache"
    personal.mkdir(parents=True)
    for name in entries:
        (personal / name).write_text("{}")
    (tmp_path / "04.ipynb").write_text(outputs)
    (tmp_path / "nbconvert.log").write_text("Traceback ...\nCellExecutionError: boom")
    return {"personal": str(personal), "executed": str(tmp_path / "04.ipynb"), "log": str(tmp_path / "nbconvert.log")}


def test_a_kernel_that_read_the_shared_cache_and_trained_nothing_is_fine(tmp_path):
    assert check_kernel(3, kernel(tmp_path, f"... {READ_FROM_SHARED} (trained ..."), 0) is None


def test_each_way_a_kernel_can_fail_is_named(tmp_path):
    assert check_kernel(3, kernel(tmp_path / "a", READ_FROM_SHARED), 1).startswith("kernel 3: exit code 1: ")
    assert "CellExecutionError: boom" in check_kernel(3, kernel(tmp_path / "b", READ_FROM_SHARED), 1)
    trained = check_kernel(3, kernel(tmp_path / "c", READ_FROM_SHARED, ["abc.json", "abc-0123.pt"]), 0)
    assert trained == "kernel 3 trained again: ['abc.json'] in its personal cache"
    unshared = check_kernel(3, kernel(tmp_path / "d", "read from the run cache"), 0)  # its own cache, not the shared
    assert "no run was read from the shared cache" in unshared


def test_run_kernels_kills_a_job_past_its_time_limit_and_keeps_the_others(tmp_path):
    jobs = [{"command": [sys.executable, "-c", command], "env": {}, "log": str(tmp_path / f"{index}.log"),
             "timeout": timeout} for index, (command, timeout) in enumerate(
                 [("import time; time.sleep(60)", 1), ("print('done')", 60)])]  # fmt: skip
    (hung_seconds, hung_code), (_, code) = run_kernels(jobs)[0]
    assert hung_code == -9 and 1 <= hung_seconds < 30
    assert code == 0


@pytest.mark.slow
def test_a_load_test_kernel_talks_to_nbconvert_over_its_own_unix_sockets(tmp_path):
    """No TCP port to race for: the kernel's connection is transport ipc at the job's own path."""
    cell = "from ipykernel import get_connection_info; print(get_connection_info())"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "connection.ipynb")
    command = [*nbconvert_command([tmp_path / "connection.ipynb"], tmp_path / "out"), *own_channels(tmp_path / "ch")]
    subprocess.run(command, check=True, capture_output=True)
    executed = nbformat.read(tmp_path / "out" / "connection.ipynb", as_version=4)
    connection = json.loads(executed.cells[0].outputs[0]["text"])
    assert (connection["transport"], connection["ip"]) == ("ipc", str(tmp_path / "ch"))
