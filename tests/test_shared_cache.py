"""The shared run cache (BNLIB_SHARED_CACHE: read first, never written) and cache folders that cannot be read or
written: one warning line that names the folder and the reason, and the result all the same.

A root process reads every file whatever its mode, so the permissions themselves are tested as another user in
tests/test_shared_cache_other_user.py; here the failures are real where root meets them too (a file where the
folder should be, a folder where the entry should be) and simulated in the writer otherwise (errno set).
"""

import errno
import os
import warnings

import pytest
import torch

from bnlib import cache, files, runs
from bnlib.studies.placement import Variant, run_grid
from tests.support.computations import Computation
from tests.support.splits import random_splits

CONFIG = {"procedure": "shared cache test", "seed": 3}
OTHER = {**CONFIG, "seed": 4}


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """(shared, personal): an instructor's cache set as BNLIB_SHARED_CACHE and a student's as BNLIB_CACHE_DIR."""
    shared, personal = tmp_path / "shared", tmp_path / "personal"
    shared.mkdir()
    monkeypatch.setenv(cache.SHARED_CACHE_ENV, str(shared))
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(personal))
    return shared, personal


def run(compute, config=CONFIG, cache_dir=None, **options):
    return cache.cached(config, compute, device="cpu", description="test run", cache_dir=cache_dir, **options)


def snapshot(folder):
    """{file name: bytes} of `folder`: to show that nothing in it changed."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def messages(caught):
    return [str(warning.message) for warning in caught]


def test_a_run_in_the_shared_cache_is_read_and_never_computed_again(folders, capsys):
    shared, personal = folders
    instructor = run(Computation(), cache_dir=shared)  # `make warm` with BNLIB_CACHE_DIR=shared
    compute = Computation()
    student = run(compute)
    assert student.cached and compute.calls == 0 and student.folder == shared
    assert student.record == instructor.record and student.key == instructor.key
    for name, tensor in instructor.tensors.items():
        torch.testing.assert_close(student.tensors[name], tensor, rtol=0, atol=0)
    assert not personal.exists()  # nothing was written for the student
    (line,) = capsys.readouterr().out.splitlines()
    assert "read from the shared run cache" in line and str(shared) in line
    assert f"{cache.RETRAIN_ENV}=1 (into your own cache)" in line and "delete" not in line


def test_a_run_missing_from_the_shared_cache_is_computed_into_the_personal_one(folders, capsys):
    shared, personal = folders
    run(Computation(), cache_dir=shared)
    before = snapshot(shared)
    compute = Computation()
    computed = run(compute, config=OTHER)
    assert not computed.cached and compute.calls == 1 and computed.folder == personal
    assert [path.name for path in personal.glob("*.json")] == [f"{computed.key}.json"]
    read = run(compute, config=OTHER)
    assert read.cached and compute.calls == 1 and read.folder == personal and read.record == computed.record
    assert snapshot(shared) == before
    line = capsys.readouterr().out.splitlines()[-1]
    assert "read from the run cache" in line and str(personal) in line and "or delete that folder" in line


def test_the_shared_cache_is_read_before_the_personal_one(folders):
    shared, personal = folders
    config = cache.full_config(CONFIG, None, "cpu")
    cache.write_entry(shared, config, {"from": "shared"})
    cache.write_entry(personal, config, {"from": "personal"})
    assert cache.lookup_folders(personal) == [shared, personal]
    assert cache.lookup(personal, config).record == {"from": "shared"}
    assert cache.describe_folders(personal) == f"{shared} (shared), then {personal}"


def test_one_folder_set_as_both_is_read_once(folders, monkeypatch):
    shared, _ = folders
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(shared))  # the instructor, warming the cache the class will read
    assert cache.lookup_folders(shared) == [shared] and cache.describe_folders(shared) == str(shared)
    compute = Computation()
    assert not run(compute).cached and run(compute).cached and compute.calls == 1


def test_without_a_shared_cache_only_the_personal_one_is_read(folders, monkeypatch):
    _, personal = folders
    monkeypatch.delenv(cache.SHARED_CACHE_ENV)
    assert cache.resolve_shared_cache_dir() is None and cache.lookup_folders(personal) == [personal]
    monkeypatch.setenv(cache.SHARED_CACHE_ENV, "")  # how the Makefile turns it off for `make warm` and `make bench`
    assert cache.resolve_shared_cache_dir() is None


def test_retrain_computes_into_the_personal_cache_and_leaves_the_shared_one(folders, monkeypatch):
    shared, personal = folders
    run(Computation(), cache_dir=shared)
    before = snapshot(shared)
    monkeypatch.setenv(cache.RETRAIN_ENV, "1")
    compute = Computation()
    retrained = run(compute)
    assert not retrained.cached and compute.calls == 1 and retrained.folder == personal
    assert snapshot(shared) == before


def test_a_shared_cache_that_is_not_a_folder_warns_and_computes(folders, monkeypatch, tmp_path):
    _, personal = folders
    typo = tmp_path / "shraed"
    monkeypatch.setenv(cache.SHARED_CACHE_ENV, str(typo))
    with pytest.warns(UserWarning) as caught:
        entry = run(Computation())
    assert messages(caught) == [
        f"Run cache: the shared cache {typo} ({cache.SHARED_CACHE_ENV}) is not a folder; computing it again."]
    assert not entry.cached and entry.folder == personal


def test_a_corrupt_shared_entry_falls_back_to_the_personal_one(folders):
    shared, personal = folders
    run(Computation(), cache_dir=shared)
    personal_entry = cache.write_entry(personal, cache.full_config(CONFIG, None, "cpu"), {"from": "personal"})
    (record,) = shared.glob("*.json")
    record.write_text('{"config": ')  # cut short
    compute = Computation()
    with pytest.warns(UserWarning) as caught:
        entry = run(compute)
    (message,) = messages(caught)
    assert message.startswith(f"Run cache: {record} cannot be read") and message.endswith(
        f"; read from {personal} instead.")
    assert entry.cached and entry.folder == personal and entry.record == personal_entry.record and compute.calls == 0


def test_an_entry_that_cannot_be_read_warns_and_computes(folders):
    shared, personal = folders
    key = cache.config_key(cache.full_config(CONFIG, None, "cpu"))
    (shared / f"{key}.json").mkdir(parents=True)  # read_text fails with an OSError, even for root
    with pytest.warns(UserWarning) as caught:
        entry = run(Computation())
    assert messages(caught) == [f"Run cache: cannot read {shared / key}.json (Is a directory); computing it again."]
    assert not entry.cached and entry.folder == personal


def fail_with(number):
    """A stand-in for tempfile.mkstemp that fails as the OS does when a folder cannot take a new file."""

    def mkstemp(dir, **options):
        raise OSError(number, os.strerror(number), dir)

    return mkstemp


WRITE_FAILURES = {"read-only folder": errno.EACCES, "read-only file system": errno.EROFS, "full disk": errno.ENOSPC}


@pytest.mark.parametrize("number", WRITE_FAILURES.values(), ids=list(WRITE_FAILURES))
def test_a_write_that_cannot_happen_warns_in_one_line_and_returns_the_result(folders, monkeypatch, number):
    _, personal = folders
    monkeypatch.setattr(files.tempfile, "mkstemp", fail_with(number))
    compute = Computation()
    with pytest.warns(UserWarning) as caught:
        entry = run(compute)
    reason = os.strerror(number)  # "Permission denied", "Read-only file system", "No space left on device"
    assert messages(caught) == [f"Run cache: cannot write to {personal} ({reason}); the result is not kept."]
    assert not entry.cached and entry.folder is None and compute.calls == 1 and entry.record["call"] == 1
    assert entry.tensors.keys() == {"weight", "steps"}
    assert list(personal.iterdir()) == []  # no temporary or partial file


def test_a_full_disk_while_writing_the_record_leaves_no_tensor_file(folders, monkeypatch):
    _, personal = folders
    writes = []
    real_fsync = files.os.fsync

    def disk_full_at_the_second_file(descriptor):  # the tensor file fits, its JSON record does not
        writes.append(descriptor)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(files.os, "fsync", disk_full_at_the_second_file)
    with pytest.warns(UserWarning, match=os.strerror(errno.ENOSPC)):
        entry = run(Computation())
    assert entry.record["call"] == 1 and entry.folder is None
    assert list(personal.iterdir()) == []


def test_a_cache_path_that_is_a_file_warns_and_returns_the_result(tmp_path):
    path = tmp_path / "cache"
    path.write_text("not a folder")
    with pytest.warns(UserWarning, match=f"cannot write to {path} .*not a folder") as caught:
        entry = run(Computation(), cache_dir=path)
    assert len(caught) == 1 and entry.record["call"] == 1 and path.read_text() == "not a folder"


def test_many_failed_writes_show_one_warning(folders, monkeypatch):
    monkeypatch.setattr(files.tempfile, "mkstemp", fail_with(errno.EACCES))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own filter: each text once per place it comes from
        entries = [run(Computation(), config={**CONFIG, "seed": seed}) for seed in range(5)]
    assert len(caught) == 1 and all(entry.record["call"] == 1 for entry in entries)


TINY_GRID = {"variants": (Variant("plain", hidden=(8,)),), "seeds": [7, 8], "num_epochs": 1, "batch_size": 32,
             "device": "cpu", "progress": False}  # fmt: skip


def test_the_grid_reads_the_shared_cache_without_training(folders, monkeypatch):
    shared, personal = folders
    data = random_splits(64, 16, 16)
    instructor = run_grid(**TINY_GRID, data=data, cache_dir=shared)

    def fail(*args, **kwargs):
        raise AssertionError("train_model called although the shared cache holds every run")

    monkeypatch.setattr(runs, "train_model", fail)
    student = run_grid(**TINY_GRID, data=data)
    assert student["cached"].all() and not personal.exists()
    assert student["valid_acc_curve"].tolist() == instructor["valid_acc_curve"].tolist()


def test_the_grid_returns_its_rows_when_its_records_cannot_be_written(folders, monkeypatch):
    _, personal = folders
    monkeypatch.setattr(files.tempfile, "mkstemp", fail_with(errno.ENOSPC))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        rows = run_grid(**TINY_GRID, data=random_splits(64, 16, 16))
    reason = os.strerror(errno.ENOSPC)
    assert messages(caught) == [f"Run cache: cannot write to {personal} ({reason}); the result is not kept."]
    assert len(rows) == 2 and not rows["cached"].any() and list(personal.iterdir()) == []


def test_the_cache_summary_names_both_folders(folders):
    shared, personal = folders
    assert f"({shared} (shared), then {personal})" in runs.cache_summary([])
