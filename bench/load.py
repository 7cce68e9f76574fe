"""The class load test: 8 kernels at once run notebook 04 in quick mode against one shared, read-only run cache.

On a hub every student's kernel runs on the same machine at the start of class; each reads the
instructor's warm cache (BNLIB_SHARED_CACHE) and has a fresh personal one (BNLIB_CACHE_DIR).
`run_load_test` warms a shared cache with one run of the notebook, makes it read-only, starts the
kernels together and reports whether all succeeded, whether any trained again (wrote an entry to its
personal cache), the slowest wall time and the peak memory of all of them summed (bench.memory).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import PeakTreeMemory
from bench.suite import NOTEBOOK_DIR, nbconvert_command
from bnlib.cache import CACHE_DIR_ENV, RETRAIN_ENV, SHARED_CACHE_ENV
from bnlib.config import QUICK_ENV
from bnlib.widgets.live import LIVE_ENV

LOAD_KERNELS = 8
LOAD_NOTEBOOK = NOTEBOOK_DIR / "04_running_statistics.ipynb"
READ_FROM_SHARED = "read from the shared run cache"  # the line bnlib.cache prints for each run it reads there
SAMPLE_INTERVAL_S = 0.5  # many large processes: sampling their memory more often takes a core from them

KERNEL_TIMEOUT_S = 600  # a kernel that dies at start-up leaves its nbconvert waiting
# Starts every job at once and prints [seconds, exit code] of each as it ends: one process whose tree
# bench.memory measures, and one clock per kernel. A job past its "timeout" is killed (exit code -9).
# The jobs come on stdin (their environments are long).
LAUNCHER = """
import json, subprocess, sys, time
jobs = json.load(sys.stdin)
start = time.perf_counter()
running = {index: subprocess.Popen(job["command"], env=job["env"], stdout=subprocess.DEVNULL,
                                   stderr=open(job["log"], "w")) for index, job in enumerate(jobs)}
results = [None] * len(jobs)
while running:
    for index, process in list(running.items()):
        if process.poll() is not None:
            results[index] = [time.perf_counter() - start, process.returncode]
            del running[index]
        elif time.perf_counter() - start > jobs[index]["timeout"]:
            process.kill()
    time.sleep(0.1)
print(json.dumps(results))
"""


def kernel_environment(personal, shared=None):
    """This environment in quick mode without live curves, its run cache `personal`, read after `shared` if given."""
    env = {name: value for name, value in os.environ.items() if name not in (RETRAIN_ENV, SHARED_CACHE_ENV)}
    env |= {QUICK_ENV: "1", LIVE_ENV: "0", "MPLBACKEND": "Agg", CACHE_DIR_ENV: str(personal)}
    return env if shared is None else env | {SHARED_CACHE_ENV: str(shared)}


def set_read_only(folder, read_only=True):
    """Files 0444 and folders 0555 under `folder` (0644 and 0755 with `read_only` False): nobody but root writes."""
    file_mode, folder_mode = (0o444, 0o555) if read_only else (0o644, 0o755)
    for path in Path(folder).rglob("*"):
        path.chmod(folder_mode if path.is_dir() else file_mode)
    Path(folder).chmod(folder_mode)


def run_kernels(jobs):
    """([seconds, exit code] per job, peak MB of all of them together) for `jobs` started at the same time."""
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
    with PeakTreeMemory(launcher.pid, interval=SAMPLE_INTERVAL_S) as memory:
        output, _ = launcher.communicate(json.dumps(jobs))
    if launcher.returncode != 0:
        raise RuntimeError(f"the load test's launcher failed with exit code {launcher.returncode}")
    return json.loads(output), memory.peak_mb


def warm_shared_cache(folder, notebook, output_dir):
    """Seconds to run `notebook` once in quick mode with `folder` as its run cache; RuntimeError when it fails."""
    start = time.perf_counter()
    run = subprocess.run(nbconvert_command([notebook], output_dir), env=kernel_environment(folder),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"warming the shared cache with {notebook.name} failed: {run.stderr[-2000:]}")
    return time.perf_counter() - start


def own_channels(prefix):
    """nbconvert options that connect it to its kernel over Unix sockets named `prefix`-1, -2, ... instead of TCP
    ports: kernels that start together pick free TCP ports at the same moment and can race for one."""
    return ["--KernelManager.transport=ipc", f"--KernelManager.ip={prefix}"]


def kernel_job(folder, index, notebook, shared):
    """Kernel `index`'s command, environment, time limit and files in `folder`: its personal cache, executed copy
    and log."""
    output = folder / f"kernel{index}"
    output.mkdir()  # for the log, before nbconvert starts
    command = [*nbconvert_command([notebook], output), *own_channels(output / "channel")]
    return {"command": command, "env": kernel_environment(output / "cache", shared),
            "log": str(output / "nbconvert.log"), "personal": str(output / "cache"),
            "executed": str(output / notebook.name), "timeout": KERNEL_TIMEOUT_S}  # fmt: skip


def check_kernel(index, job, code):
    """What went wrong with kernel `index`, or None: an exit code, an entry trained again, nothing read from the
    shared cache."""
    if code != 0:
        return f"kernel {index}: exit code {code}: {Path(job['log']).read_text()[-2000:]}"
    trained = sorted(path.name for path in Path(job["personal"]).glob("*.json"))
    if trained:
        return f"kernel {index} trained again: {trained} in its personal cache"
    if READ_FROM_SHARED not in Path(job["executed"]).read_text():
        return f"kernel {index}: no run was read from the shared cache ({READ_FROM_SHARED!r} not in its outputs)"
    return None


def run_load_test(kernels=LOAD_KERNELS, notebook=LOAD_NOTEBOOK, log=print):
    """Warm a shared cache with one run of `notebook`, then run it in `kernels` kernels at once against it.

    Keys: load_test_kernels, load_test_notebook, load_test_warm_up_s, load_test_wall_s (per kernel),
    load_test_slowest_wall_s, load_test_summed_peak_mb (all kernels and their nbconvert processes) and
    load_test_problems (an empty list when every kernel succeeded, read the shared cache and trained nothing).
    """
    notebook = Path(notebook)
    with tempfile.TemporaryDirectory(prefix="bnlib-load-") as folder:
        folder = Path(folder)
        shared = folder / "shared"
        log(f"load test: warming a shared cache with one quick run of {notebook.name} ...")
        warm_up = warm_shared_cache(shared, notebook, folder / "warm")
        set_read_only(shared)
        jobs = [kernel_job(folder, index, notebook, shared) for index in range(kernels)]
        log(f"load test: {kernels} kernels at once, each with a fresh personal cache ...")
        try:
            ended, peak = run_kernels(jobs)
            problems = [check_kernel(index, jobs[index], code) for index, (_, code) in enumerate(ended)]
        finally:
            set_read_only(shared, False)  # so that the temporary folder can be removed
    seconds = [wall for wall, _ in ended]
    problems = [problem for problem in problems if problem]
    log(f"  slowest kernel {max(seconds):.1f} s, peak {peak:.0f} MB summed, {len(problems)} problems")
    return {"load_test_kernels": kernels, "load_test_notebook": notebook.name, "load_test_warm_up_s": warm_up,
            "load_test_wall_s": seconds, "load_test_slowest_wall_s": max(seconds), "load_test_summed_peak_mb": peak,
            "load_test_problems": problems}  # fmt: skip
