"""An instructor's run cache written by root is read by another user (uid 65534) with no retraining; that user's new
entries go to their own cache; a file or folder they may not read or write is one warning line, never an error.

CI runs as root, which reads and writes every file whatever its mode, so the student runs in a subprocess as
uid 65534 (setpriv). Without root or setpriv the test is skipped saying why; in CI (CI=true) that is a failure.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bnlib import cache
from tests.support.computations import Computation
from tests.support.other_user import (
    OTHER_UID,
    REPO,
    as_other_user,
    other_user_environment,
    other_user_python,
    reachable_by_others,
)

pytestmark = pytest.mark.slow  # a Python importing torch as another user: ~10 s on two cores

STUDENT_SCRIPT = REPO / "tests" / "support" / "cache_as_student.py"
CONFIGS = {name: {"procedure": "other user test", "case": name} for name in ("warm", "new", "private", "locked")}


@pytest.fixture
def world_readable_folder():
    """A temporary folder other users may enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="bnlib-other-user-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(autouse=True)
def checkout_reachable():
    """The checkout and its packages reachable by the other user even where the clone sits in a private folder."""
    if os.geteuid() != 0:
        yield
        return
    with reachable_by_others():
        yield


def python_for_the_student(home):
    python, reason = other_user_python(home)
    if python is None:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason} (CI must run the permission test as another user)", pytrace=False)
        pytest.skip(reason)
    return python


def instructor_cache(folder, names):
    """`folder` filled by root, as `make warm` does, with an entry for each configuration in `names`."""
    for name in names:
        cache.cached(CONFIGS[name], Computation(), device="cpu", description=name, cache_dir=folder, verbose=False)
    return folder


def entry_path(folder, name):
    return folder / f"{cache.config_key(cache.full_config(CONFIGS[name], None, 'cpu'))}.json"


def snapshot(folder):
    return {path.name: (path.read_bytes(), path.stat().st_mode) for path in folder.iterdir()}


def test_a_student_reads_the_instructors_cache_and_writes_only_their_own(world_readable_folder, private_umask):
    base = world_readable_folder
    instructor = instructor_cache(base / "instructor", ["warm", "private"])  # written under umask 077
    entry_path(instructor, "private").chmod(0o600)  # an entry the class may not read
    closed = instructor_cache(base / "closed", ["warm"])
    closed.chmod(0o700)  # a shared cache the class may not enter
    locked, home = base / "locked", base / "student"
    for folder in (locked, home):
        folder.mkdir()
        folder.chmod(0o755)  # mkdir's mode passes through the umask
    os.chown(home, OTHER_UID, OTHER_UID)  # locked stays root's: a personal cache the student may not write
    personal, other = home / "cache", home / "other"
    before = snapshot(instructor)

    python = python_for_the_student(home)
    cases = [
        {"config": CONFIGS["warm"], "shared": str(instructor), "personal": str(personal)},
        {"config": CONFIGS["new"], "shared": str(instructor), "personal": str(personal)},
        {"config": CONFIGS["private"], "shared": str(instructor), "personal": str(personal)},
        {"config": CONFIGS["new"], "shared": str(instructor), "personal": str(locked)},
        {"config": CONFIGS["warm"], "shared": str(closed), "personal": str(other)},
    ]
    process = subprocess.run(as_other_user([python, str(STUDENT_SCRIPT), json.dumps(cases)]), cwd=home,
                             env=other_user_environment(home), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert process.returncode == 0, process.stderr
    warm, new, private, new_locked, warm_closed = json.loads(process.stdout)

    assert {answer["uid"] for answer in (warm, new, private, new_locked, warm_closed)} == {OTHER_UID}
    assert Path(warm["bnlib"]).resolve().is_relative_to(REPO)
    # The instructor's entry is read, not trained again, and nothing is written for it
    assert (warm["computed"], warm["folder"], warm["warnings"]) == (False, str(instructor), [])
    assert warm["record"]["call"] == 1  # the instructor's record
    # A run the shared cache lacks is trained and kept in the student's own cache, readable by everyone
    assert (new["computed"], new["folder"], new["record"], new["warnings"]) == (
        True, str(personal), {"computed_by": OTHER_UID}, [])
    # An entry the student may not read: one warning, trained into the student's cache
    assert private["computed"] and private["folder"] == str(personal)
    assert private["warnings"] == [
        f"Run cache: cannot read {entry_path(instructor, 'private')} (Permission denied); computing it again."]
    # A personal cache the student may not write: one warning, the result returned all the same
    assert new_locked["computed"] and new_locked["folder"] is None and new_locked["record"]["computed_by"] == OTHER_UID
    assert new_locked["warnings"] == [
        f"Run cache: cannot write to {locked} (Permission denied); the result is not kept."]
    # A shared cache the student may not enter: one warning, trained into the student's cache
    assert warm_closed["computed"] and warm_closed["folder"] == str(other)
    assert warm_closed["warnings"] == [
        f"Run cache: cannot open the folder {closed} (permission denied); computing it again."]

    assert snapshot(instructor) == before and list(locked.iterdir()) == []
    written = [personal, *personal.iterdir()]
    assert sorted(path.suffix for path in written) == ["", ".json", ".json", ".pt", ".pt"]  # "new" and "private"
    assert {(path.stat().st_uid, path.stat().st_mode & 0o777) for path in written} == {
        (OTHER_UID, 0o755), (OTHER_UID, 0o644)}
