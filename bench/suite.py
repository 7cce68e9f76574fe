"""Wall time and peak memory of the notebook suite, executed by nbconvert in a child process."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def nbconvert_command(notebooks, output_dir):
    """`jupyter nbconvert --execute` over `notebooks` into `output_dir`, as `make run` does it."""
    return [
        sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.timeout=-1", "--output-dir", str(output_dir), *map(str, notebooks),
    ]  # fmt: skip


# Runs the command and writes the peak RSS of its process tree to a file. It stands between the bench
# and the command because Linux carries a parent's peak RSS over fork and exec into the child's own
# maxrss: measured directly, the notebooks would inherit the bench's gigabytes of resident MNIST.
PEAK_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as file:
    file.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(command, env):
    """(seconds, peak RSS in MB, exit code) of `command`; the peak is the largest process of its tree.

    RUSAGE_CHILDREN's ru_maxrss (kB on Linux, bytes on macOS) covers every descendant that was
    waited for, here nbconvert and the Jupyter kernel it starts, where the notebooks' memory goes.
    """
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-rss-") as folder:
        peak_file = Path(folder) / "peak"
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-c", PEAK_LAUNCHER, str(peak_file), *command], env=env,
                               stdout=sys.stderr)
        seconds = time.perf_counter() - start
        peak = int(peak_file.read_text()) if peak_file.exists() else 0
    scale = 1 if sys.platform == "darwin" else 1024
    return seconds, peak * scale / 2**20, code


def run_suite(quick, cache_dir, notebooks=None, log=print):
    """{"seconds", "peak_rss_mb", "failed", "per_notebook_s"} of the notebooks, each in its own nbconvert.

    One process per notebook (a second or two more in all) says which notebook the time goes to;
    `cache_dir` is the experiment cache (BNLIB_CACHE_DIR) they share.
    """
    notebooks = notebooks if notebooks is not None else sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    env = os.environ | {"BNLIB_QUICK": "1" if quick else "0", "BNLIB_CACHE_DIR": str(cache_dir)}
    result = {"seconds": 0.0, "peak_rss_mb": 0.0, "failed": [], "per_notebook_s": {}}
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-notebooks-") as output_dir:
        for notebook in notebooks:
            seconds, peak, code = run_measured(nbconvert_command([notebook], output_dir), env)
            log(f"    {Path(notebook).name}: {seconds:.1f} s, peak RSS {peak:.0f} MB, exit code {code}")
            result["seconds"] += seconds
            result["peak_rss_mb"] = max(result["peak_rss_mb"], peak)
            if code != 0:
                result["failed"].append(f"{Path(notebook).name} (exit code {code})")
            result["per_notebook_s"][Path(notebook).name] = seconds
    return result


def time_suites(full, log=print):
    """Quick suite from an empty cache; with `full`, the full suite from an empty cache and again warm.

    Keys: quick_suite_s, quick_peak_rss_mb, and with `full` also full_suite_s, full_suite_warm_s and
    peak_rss_mb (the cold full run, the one that trains); per notebook in suite_per_notebook_s; failed
    notebooks in suite_errors.
    """
    results = {}
    runs = [("quick", True, "quick_suite_s")]
    if full:
        runs += [("full", False, "full_suite_s"), ("full, warm cache", False, "full_suite_warm_s")]
    with tempfile.TemporaryDirectory(prefix="bnlib-bench-cache-") as temporary:
        for label, quick, key in runs:
            cache = Path(temporary) / ("quick" if quick else "full")  # empty for the first run of each mode
            log(f"notebook suite, {label} (cache {cache}, {'warm' if cache.exists() else 'empty'}) ...")
            run = run_suite(quick, cache, log=log)
            results.setdefault("suite_per_notebook_s", {})[key] = run["per_notebook_s"]
            if run["failed"]:
                results.setdefault("suite_errors", []).append(f"{label} suite: failed {', '.join(run['failed'])}")
            results[key] = run["seconds"]
            if key == "quick_suite_s":
                results["quick_peak_rss_mb"] = run["peak_rss_mb"]
            elif key == "full_suite_s":
                results["peak_rss_mb"] = run["peak_rss_mb"]
            log(f"  {run['seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB, {len(run['failed'])} failed")
    return results
