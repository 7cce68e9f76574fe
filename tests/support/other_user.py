"""Running Python as another user (uid 65534, "nobody") for the permission tests: CI runs as root, and root reads
every file whatever its mode, so a permission test run as root passes by accident."""

import os
import shutil
import site
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

OTHER_UID = 65534
REPO = Path(__file__).resolve().parent.parent.parent
# The same Python version as this one (torch's compiled modules need it): this interpreter, or the system's, since
# root's own interpreter may live where other users cannot enter (pyenv in /root).
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
CANDIDATES = (sys.executable, f"/usr/bin/python{VERSION}", f"/usr/local/bin/python{VERSION}")
PROBE = f"import sys, importlib.util as u; assert sys.version[:{len(VERSION)}] == {VERSION!r}; " \
        "assert u.find_spec('torch') and u.find_spec('bnlib')"  # fmt: skip


def other_user_environment(home):
    """The environment of the other user's Python: this repository and this interpreter's packages on its path."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()]),
        "PYTHONDONTWRITEBYTECODE": "1",  # it may not write __pycache__ beside root's files
        "OMP_NUM_THREADS": "1",
    }


@contextmanager
def reachable_by_others():
    """Every folder above the checkout and this interpreter's packages searchable by other users (o+x) while
    inside, restored afterwards.

    A clone under a private folder (`mktemp -d` makes 0700 ones) could not be reached by the other user at all;
    search permission lets it reach the checkout and the packages, whose own modes still decide what it reads.
    """
    changed = {}
    for path in (REPO, *site.getsitepackages()):
        for folder in Path(path).resolve().parents:
            mode = stat.S_IMODE(folder.stat().st_mode)
            if not mode & stat.S_IXOTH and folder not in changed:
                changed[folder] = mode
                folder.chmod(mode | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


def as_other_user(command):
    """`command` run as OTHER_UID with its own group and no supplementary groups (util-linux's setpriv)."""
    return ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", *command]


def other_user_python(home):
    """(the Python command for OTHER_UID, None), or (None, why it cannot run): not root, no setpriv, no interpreter."""
    if os.geteuid() != 0:
        return None, "not root: switching to another user needs root"
    if shutil.which("setpriv") is None:
        return None, "setpriv (util-linux) is missing"
    for python in dict.fromkeys(CANDIDATES):
        probe = subprocess.run(as_other_user([python, "-c", PROBE]), env=other_user_environment(home),
                               capture_output=True, timeout=60)  # fmt: skip
        if probe.returncode == 0:
            return python, None
    return None, (f"user {OTHER_UID} cannot run Python {VERSION} with torch and bnlib from {REPO} (tried "
                  f"{', '.join(CANDIDATES)}): the checkout and the packages must be readable by other users")
