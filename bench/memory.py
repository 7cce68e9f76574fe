"""Memory of a process tree: a process and every process it starts, summed, and its peak sampled in a thread.

A JupyterHub or Binder container's limit counts all of a user's processes together, so a notebook's
figure is the sum over nbconvert (standing in for the Jupyter server), the kernel and the kernel's
own workers; a peak shorter than the sampling interval can be missed.
"""

import contextlib
import threading

import psutil

SAMPLE_INTERVAL_S = 0.15


def process_mb(process):
    """MB held by the psutil.Process `process`: its proportional set size (PSS) where the platform gives it, else RSS.

    PSS counts a page shared by k processes as 1/k in each, so a sum over processes counts torch's
    libraries, or a data set the processes share, once.
    """
    info = process.memory_full_info()
    return getattr(info, "pss", info.rss) / 2**20


def tree_mb(process):
    """MB held by the psutil.Process `process` and all its descendants together; a process gone meanwhile counts 0."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:  # `process` itself has exited
        return 0.0
    total = 0.0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += process_mb(member)
    return total


class PeakTreeMemory:
    """Samples `tree_mb` of process `pid` every `interval` seconds in a thread while used as a context manager.

    `peak_mb` is the largest sum seen so far.
    """

    def __init__(self, pid, interval=SAMPLE_INTERVAL_S):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while True:
            self.peak_mb = max(self.peak_mb, tree_mb(self.process))
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        return False
