"""Wall time, cell time and peak memory of the notebook suite, executed by nbconvert in a child process."""

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat

from bench.memory import PeakTreeMemory
from bnlib.cache import CACHE_DIR_ENV
from bnlib.config import QUICK_ENV
from bnlib.files import make_folder
from bnlib.runtime import MEMORY_LIMIT_ENV
from bnlib.widgets.live import LIVE_ENV

# The notebooks run as in a class's 1.5 GB hub container (BNLIB_MEMORY_LIMIT_MB stands for its cgroup limit):
# notebook 03 then trains its grid in the kernel and notebook 06 starts 2 ranks, as they would there.
CLASS_MEMORY_MB = 1500
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# torch.compile's own cache sits beside the run cache: an empty run cache then means that inductor compiles from
# scratch too, as on a student's first run (with a warm inductor cache notebook 09 starts no C++ compiler).
INDUCTOR_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
INDUCTOR_CACHE_SUFFIX = "-torchinductor"


def nbconvert_command(notebooks, output_dir):
    """`jupyter nbconvert --execute` over `notebooks` into `output_dir`, as `make run` does it."""
    return [
        sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.timeout=-1", "--output-dir", str(output_dir), *map(str, notebooks),
    ]  # fmt: skip


def run_measured(command, env):
    """(seconds, peak MB, exit code) of `command`; the peak is of its whole process tree, summed (bench.memory).

    For a notebook, that is nbconvert, the Jupyter kernel it starts and any worker the kernel starts.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=sys.stderr)
    with PeakTreeMemory(process.pid) as memory:
        code = process.wait()
    return time.perf_counter() - start, memory.peak_mb, code


def cell_seconds(notebook):
    """{cell index: seconds} of an executed notebook's code cells, from nbclient's timing in the cell metadata."""
    seconds = {}
    for index, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                          for key in ("iopub.execute_input", "shell.execute_reply"))  # fmt: skip
            seconds[index] = (end - start).total_seconds()
    return seconds


FLOOR_CELLS = ("import bnlib\nfrom bnlib.data import load_mnist", "data = load_mnist()\nprint(data.source)")


def write_floor_notebook(folder):
    """An otherwise empty notebook that imports bnlib and loads MNIST: the least a notebook costs."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in FLOOR_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(folder) / "00_floor.ipynb"
    nbformat.write(notebook, path)
    return path


def run_suite(quick, cache_dir, notebooks=None, log=print, keep_dir=None):
    """Wall and cell times of the notebooks, each in its own nbconvert; peak memory and failures.

    Keys: seconds (wall, all notebooks), peak_rss_mb (the largest of peak_mb), failed, per_notebook_s
    (wall), peak_mb (each notebook's peak memory, all its processes summed, `run_measured`), cell_s
    (the sum of each notebook's cell times), slowest_cells ({notebook: {cell, seconds}}) and
    slowest_cell ({notebook, cell, seconds}); cell is the index in the notebook's cells. `cache_dir`
    is the run cache (BNLIB_CACHE_DIR) they share, and `<cache_dir>-torchinductor` torch.compile's cache;
    `keep_dir`, where given, keeps the executed notebooks.
    """
    notebooks = notebooks if notebooks is not None else sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    env = os.environ | {QUICK_ENV: "1" if quick else "0", CACHE_DIR_ENV: str(cache_dir), LIVE_ENV: "0",
                        MEMORY_LIMIT_ENV: os.environ.get(MEMORY_LIMIT_ENV) or str(CLASS_MEMORY_MB),
                        INDUCTOR_CACHE_ENV: f"{cache_dir}{INDUCTOR_CACHE_SUFFIX}"}  # fmt: skip
    result = {"seconds": 0.0, "peak_rss_mb": 0.0, "failed": [], "per_notebook_s": {}, "peak_mb": {}, "cell_s": {},
              "slowest_cells": {}, "slowest_cell": None}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-notebooks-") as temporary:
        output_dir = temporary if keep_dir is None else make_folder(keep_dir)
        for notebook in map(Path, notebooks):
            seconds, peak, code = run_measured(nbconvert_command([notebook], output_dir), env)
            executed = Path(output_dir) / notebook.name
            cells = cell_seconds(nbformat.read(executed, as_version=4)) if executed.exists() else {}
            log(f"    {notebook.name}: {seconds:.1f} s wall, {sum(cells.values()):.1f} s in cells, "
                f"peak memory {peak:.0f} MB (all its processes), exit code {code}")  # fmt: skip
            result["seconds"] += seconds
            result["peak_rss_mb"] = max(result["peak_rss_mb"], peak)
            if code != 0:
                result["failed"].append(f"{notebook.name} (exit code {code})")
            result["per_notebook_s"][notebook.name] = seconds
            result["peak_mb"][notebook.name] = peak
            result["cell_s"][notebook.name] = sum(cells.values())
            if cells:
                index = max(cells, key=cells.get)
                result["slowest_cells"][notebook.name] = {"cell": index, "seconds": cells[index]}
                if result["slowest_cell"] is None or cells[index] > result["slowest_cell"]["seconds"]:
                    result["slowest_cell"] = {"notebook": notebook.name, "cell": index, "seconds": cells[index]}
    return result


def time_floor(cache_dir, log=print):
    """{floor_wall_s, floor_cell_s}: an otherwise empty notebook that imports bnlib and loads MNIST."""
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-floor-") as folder:
        log("floor: a notebook that only imports bnlib and loads MNIST ...")
        run = run_suite(False, cache_dir, [write_floor_notebook(folder)], log=log)
    return {"floor_wall_s": run["seconds"], "floor_cell_s": sum(run["cell_s"].values())}


def _warm_keys(run):
    """The class-mode figures of a full run with a warm cache."""
    cell_s = run["cell_s"]
    slowest = run["slowest_cell"]
    return {
        "warm_cell_s_per_notebook": sum(cell_s.values()) / len(cell_s) if cell_s else None,
        "slowest_cell_warm_s": slowest["seconds"] if slowest else None,
        "slowest_cell_warm": slowest,
    }


def time_suites(full, log=print, keep_dir=None):
    """With `full`, the full suite from an empty cache, then again warm, and the floor; then the quick suite.

    `keep_dir`, where given, keeps the executed notebooks of the full run from an empty cache (the figures of
    one full-mode run, for tools/export_figures.py).

    Keys: quick_suite_s, quick_slowest_notebook_s, quick_peak_rss_mb; with `full` also full_suite_s,
    full_suite_warm_s, peak_rss_mb (the cold full run, the one that trains), warm_cell_s_per_notebook,
    slowest_cell_warm_s and slowest_cell_warm, floor_wall_s and floor_cell_s; per notebook the wall
    time in suite_per_notebook_s, the peak memory of all its processes summed in
    peak_rss_mb_per_notebook, the cell time in suite_cell_s_per_notebook and the slowest cell in
    suite_slowest_cell_per_notebook, each keyed by the suite's key; failures in suite_errors. The
    peaks are the largest notebook's: peak_rss_mb and quick_peak_rss_mb.
    """
    results = {}
    runs = [("full", False, "full_suite_s"), ("full, warm cache", False, "full_suite_warm_s")] if full else []
    runs.append(("quick", True, "quick_suite_s"))  # last: the class-mode figures come first on a long run
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-cache-") as temporary:
        for label, quick, key in runs:
            cache = Path(temporary) / ("quick" if quick else "full")  # empty for the first run of each mode
            log(f"notebook suite, {label} (cache {cache}, {'warm' if cache.exists() else 'empty'}) ...")
            run = run_suite(quick, cache, log=log, keep_dir=keep_dir if key == "full_suite_s" else None)
            results.setdefault("suite_per_notebook_s", {})[key] = run["per_notebook_s"]
            results.setdefault("peak_rss_mb_per_notebook", {})[key] = run["peak_mb"]
            results.setdefault("suite_cell_s_per_notebook", {})[key] = run["cell_s"]
            results.setdefault("suite_slowest_cell_per_notebook", {})[key] = run["slowest_cells"]
            if run["failed"]:
                results.setdefault("suite_errors", []).append(f"{label} suite: failed {', '.join(run['failed'])}")
            results[key] = run["seconds"]
            if key == "quick_suite_s":
                results["quick_peak_rss_mb"] = run["peak_rss_mb"]
                results["quick_slowest_notebook_s"] = max(run["per_notebook_s"].values(), default=None)
            elif key == "full_suite_s":
                results["peak_rss_mb"] = run["peak_rss_mb"]
            else:
                results |= _warm_keys(run)
            log(f"  {run['seconds']:.1f} s, largest notebook peak {run['peak_rss_mb']:.0f} MB, "
                f"{len(run['failed'])} failed")
            if key == "full_suite_warm_s":
                results |= time_floor(cache, log=log)
    return results
