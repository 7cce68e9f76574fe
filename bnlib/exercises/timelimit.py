"""A time limit for a whole check, so that an endless loop in a student's function leaves the notebook usable.

It uses SIGALRM, so it applies only on POSIX systems (Linux, macOS) and in the main thread (where Jupyter and
nbgrader run a notebook's cells); on Windows or in another thread a check runs without a limit.
"""

import signal
import threading
from contextlib import contextmanager


class TimeLimitExceeded(BaseException):  # noqa: N818 - not an Exception, so a student's `except Exception` cannot hide it
    """Raised inside the student's function when the check's time is up."""


def can_limit_time():
    """Whether a limit applies here: SIGALRM exists and this is the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds):
    """Raise TimeLimitExceeded in the running code after `seconds` (and every 0.5 s after, in case it is caught)."""
    if seconds is None or not can_limit_time():
        yield
        return
    state = {"active": True}

    def stop(signum, frame):
        if state["active"]:
            raise TimeLimitExceeded

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        try:
            state["active"] = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
