"""bnlib.cache: keys (the code fingerprint included), read back, corrupt and truncated entries, BNLIB_RETRAIN,
no pickle, atomic writes readable by everyone, and the tests' own cache folder."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnlib import cache, files
from bnlib.data import MNISTSplits
from tests.support.cache_keys import keys_with_other_versions
from tests.support.computations import Computation
from tests.support.splits import random_splits

CONFIG = {"procedure": "test", "seed": 7, "model": {"arguments": {"hidden": [8]}, "structure": "Sequential()"}}


@pytest.fixture(scope="module")
def tiny_data():
    return random_splits(32, 8, 8)


def run(folder, compute, config=CONFIG, **options):
    return cache.cached(config, compute, device="cpu", description="test run", cache_dir=folder, **options)


def test_second_call_reads_the_same_numbers_from_disk(tmp_path, capsys):
    compute = Computation()
    first = run(tmp_path, compute)
    assert not first.cached and compute.calls == 1
    assert capsys.readouterr().out == ""  # computing says nothing; the caller's own progress shows
    second = run(tmp_path, compute)
    assert second.cached and compute.calls == 1
    assert second.record == first.record  # floats survive JSON exactly (0.1 + 0.2 included)
    assert second.key == first.key and second.trained_at == pytest.approx(first.trained_at)
    assert second.tensors.keys() == first.tensors.keys()
    for name, tensor in first.tensors.items():
        assert torch.equal(second.tensors[name], tensor) and second.tensors[name].dtype == tensor.dtype
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("test run: read from the run cache (trained ") and f"{cache.RETRAIN_ENV}=1" in line
    assert str(tmp_path) in line


def test_verbose_false_prints_nothing(tmp_path, capsys):
    run(tmp_path, Computation())
    assert run(tmp_path, Computation(), verbose=False).cached
    assert capsys.readouterr().out == ""


def test_key_changes_with_every_part_of_the_configuration(tiny_data, monkeypatch):
    def key(config=CONFIG, data=tiny_data, device="cpu"):
        return cache.config_key(cache.full_config(config, data and cache.fingerprint_data(data), device))

    reference = key()
    smaller = MNISTSplits(tiny_data.train, tiny_data.valid, (tiny_data.test[0][:-1], tiny_data.test[1][:-1]), "")
    changed = [
        key(config={**CONFIG, "seed": 8}),
        key(config={**CONFIG, "model": {**CONFIG["model"], "structure": "Sequential(Linear)"}}),
        key(config={**CONFIG, "model": {"arguments": {"hidden": [9]}, "structure": "Sequential()"}}),
        key(config={**CONFIG, "extra": None}),
        key(data=smaller),
        key(data=None),
        key(device="meta"),
    ]
    changed += keys_with_other_versions(monkeypatch, key)
    assert reference not in changed and len(set(changed)) == len(changed)
    assert key(config=dict(reversed(list(CONFIG.items())))) == reference  # key order is not configuration


def test_fingerprint_sees_a_changed_pixel(tiny_data):
    images = tiny_data.train[0].clone()
    images[0, 0, 0, 0] += 0.5
    changed = MNISTSplits((images, tiny_data.train[1]), tiny_data.valid, tiny_data.test, tiny_data.source)
    assert cache.fingerprint_data(changed)["sha256"] != cache.fingerprint_data(tiny_data)["sha256"]
    assert cache.fingerprint_data(tiny_data)["sizes"] == {"train": 32, "valid": 8, "test": 8}


def test_fingerprint_is_remembered_until_the_data_change_in_place(tiny_data, monkeypatch):
    splits = (tiny_data.train, tiny_data.valid, tiny_data.test)
    data = MNISTSplits(*(tuple(tensor.clone() for tensor in split) for split in splits), "copy")
    hashes = []
    real_sha256 = cache.hashlib.sha256
    monkeypatch.setattr(cache.hashlib, "sha256", lambda *args: hashes.append(1) or real_sha256(*args))
    first = cache.fingerprint_data(data)
    assert cache.fingerprint_data(data) == first and len(hashes) == 1  # read back, not hashed again
    data.valid[0][0, 0, 0, 0] += 0.25  # in place: same object, new pixels
    assert cache.fingerprint_data(data)["sha256"] != first["sha256"] and len(hashes) == 2


def test_a_changed_configuration_computes_again(tmp_path):
    compute = Computation()
    run(tmp_path, compute)
    assert not run(tmp_path, compute, config={**CONFIG, "seed": 8}).cached and compute.calls == 2


def entry_files(folder):
    (record,) = folder.glob("*.json")
    (tensors,) = folder.glob("*.pt")
    return record, tensors


@pytest.mark.parametrize(
    "damage",
    [
        lambda record, tensors: record.write_text('{"config": '),  # JSON cut short
        lambda record, tensors: tensors.write_bytes(tensors.read_bytes()[:100]),  # tensor file truncated
        lambda record, tensors: tensors.unlink(),  # tensor file gone
        lambda record, tensors: tensors.write_bytes(tensors.read_bytes().replace(b"PK", b"QK", 1)),  # one byte changed
        lambda record, tensors: record.write_text(json.dumps({**json.loads(record.read_text()), "record": None})),
    ],
    ids=["json cut", "tensors truncated", "tensors missing", "tensors changed", "record missing"],
)
def test_a_corrupt_entry_warns_in_one_line_and_computes_again(tmp_path, damage):
    compute = Computation()
    run(tmp_path, compute)
    damage(*entry_files(tmp_path))
    with pytest.warns(UserWarning, match="Run cache: .*computing it again") as caught:
        entry = run(tmp_path, compute)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert not entry.cached and compute.calls == 2 and entry.record["call"] == 2
    again = run(tmp_path, compute)  # the recomputed entry replaced the corrupt one
    assert again.cached and again.record["call"] == 2 and len(list(tmp_path.glob("*.pt"))) == 1


def test_an_entry_from_another_configuration_is_not_used(tmp_path):
    compute = Computation()
    first = run(tmp_path, compute)
    second = run(tmp_path, compute, config={**CONFIG, "seed": 8})
    path_a, path_b = tmp_path / f"{first.key}.json", tmp_path / f"{second.key}.json"
    text_a, text_b = path_a.read_text(), path_b.read_text()
    path_a.write_text(text_b), path_b.write_text(text_a)  # each file now holds the other run
    with pytest.warns(UserWarning, match="another configuration"):
        assert not run(tmp_path, compute).cached


def test_retrain_variable_computes_again_and_overwrites(tmp_path, monkeypatch):
    compute = Computation()
    run(tmp_path, compute)
    monkeypatch.setenv(cache.RETRAIN_ENV, "1")
    retrained = run(tmp_path, compute)
    assert not retrained.cached and compute.calls == 2
    monkeypatch.delenv(cache.RETRAIN_ENV)
    read = run(tmp_path, compute)
    assert read.cached and read.record["call"] == 2 and torch.equal(read.tensors["weight"], retrained.tensors["weight"])
    assert len(list(tmp_path.glob("*.pt"))) == 1  # the first run's tensor file is gone


def test_interrupted_results_are_returned_but_not_stored(tmp_path):
    compute = Computation(interrupted=True)
    entry = run(tmp_path, compute)
    assert entry.record["interrupted"] and not entry.cached
    assert list(tmp_path.iterdir()) == []
    run(tmp_path, compute)
    assert compute.calls == 2


UNPICKLED = []


class Payload:
    """An object whose unpickling would run code: torch.load(weights_only=True) must refuse it."""

    def __reduce__(self):
        return UNPICKLED.append, ("code ran",)


def test_tensor_files_load_without_unpickling_objects(tmp_path):
    compute = Computation()
    run(tmp_path, compute)
    record_path, tensor_path = entry_files(tmp_path)
    torch.save({"weight": torch.zeros(1), "payload": Payload()}, tensor_path)
    stored = json.loads(record_path.read_text())
    payload = tensor_path.read_bytes()
    stored["tensors"].update(bytes=len(payload), sha256=cache.hashlib.sha256(payload).hexdigest())
    record_path.write_text(json.dumps(stored))  # a consistent entry, but its tensor file holds a pickled object
    with pytest.warns(UserWarning, match="cannot be read"):
        entry = run(tmp_path, compute)
    assert UNPICKLED == [] and not entry.cached and compute.calls == 2


@pytest.mark.parametrize("failing_write", [1, 2], ids=["tensor file", "json"])
def test_a_failed_write_leaves_the_old_entry_and_no_partial_file(tmp_path, monkeypatch, failing_write):
    compute = Computation()
    old = run(tmp_path, compute)
    names = sorted(path.name for path in tmp_path.iterdir())
    writes = []
    real_fsync = files.os.fsync

    def fsync_then_fail(descriptor):
        writes.append(descriptor)
        real_fsync(descriptor)
        if len(writes) == failing_write:
            raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", fsync_then_fail)
    monkeypatch.setenv(cache.RETRAIN_ENV, "1")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, compute)
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == names  # no temporary or orphaned file
    entry = run(tmp_path, compute)
    assert entry.cached and entry.record == old.record


def test_a_failed_first_write_leaves_nothing_and_returns_the_result(tmp_path, monkeypatch):
    def fail(descriptor):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", fail)
    with pytest.warns(UserWarning, match="disk full"):
        entry = run(tmp_path, Computation())
    assert entry.record["call"] == 1 and not entry.cached and entry.folder is None
    assert list(tmp_path.iterdir()) == []


def test_entries_without_tensors_are_one_json_file(tmp_path):
    entry = cache.cached(CONFIG, lambda: ({"a": 1}, {}), device="cpu", description="d", cache_dir=tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == [f"{entry.key}.json"]
    again = cache.cached(CONFIG, lambda: ({"a": 2}, {}), device="cpu", description="d", cache_dir=tmp_path)
    assert again.cached and again.record == {"a": 1} and again.tensors == {}


def test_cache_dir_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "env"))
    assert cache.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert cache.resolve_cache_dir() == tmp_path / "env"
    run(None, Computation())
    assert len(list((tmp_path / "env").glob("*.json"))) == 1
    monkeypatch.delenv(cache.CACHE_DIR_ENV)
    assert cache.resolve_cache_dir() == cache.REPO_CACHE_DIR
    assert cache.REPO_CACHE_DIR.parent.name == "build"


def test_the_cache_folder_and_its_entries_are_readable_by_everyone(tmp_path, private_umask):
    folder = tmp_path / "build" / "cache"
    run(folder, Computation())
    assert [path.stat().st_mode & 0o777 for path in (folder.parent, folder)] == [0o755, 0o755]
    assert sorted((path.suffix, path.stat().st_mode & 0o777) for path in folder.iterdir()) == [
        (".json", 0o644), (".pt", 0o644)]


def test_the_tests_use_a_temporary_cache_not_the_repositorys(session_cache_dir):
    assert cache.resolve_cache_dir() == session_cache_dir != cache.REPO_CACHE_DIR
    assert not session_cache_dir.resolve().is_relative_to(cache.REPO_CACHE_DIR.parent.parent)


def test_the_code_fingerprint_covers_the_core_stats_and_studies_only():
    names = {path.relative_to(cache.PACKAGE_DIR).as_posix() for path in cache.fingerprinted_sources()}
    assert {"train.py", "cache.py", "stats/batchnorm.py", "studies/placement.py"} <= names
    assert {name.split("/")[0] for name in names if "/" in name} == {"stats", "studies"}
    assert cache.code_fingerprint() == cache.code_fingerprint() and len(cache.code_fingerprint()) == 64


KEY_IN_SUBPROCESS = """
import sys
from pathlib import Path
import bnlib
from bnlib import cache
assert Path(bnlib.__file__).resolve().parent == Path(sys.argv[1]).resolve(), bnlib.__file__
print(cache.config_key(cache.full_config({"procedure": "fixed"}, None, "cpu")))
"""


def copy_package(folder):
    """A copy of the bnlib package in `folder` (without bytecode); returns the copy's package folder."""
    return Path(shutil.copytree(cache.PACKAGE_DIR, folder / "bnlib", ignore=shutil.ignore_patterns("__pycache__")))


def keys_of_packages(packages):
    """For each package folder, the key of a fixed configuration in a fresh interpreter that imports bnlib from it.

    The interpreters run at the same time (each spends ~1.5 s importing torch).
    """
    processes = [subprocess.Popen([sys.executable, "-c", KEY_IN_SUBPROCESS, str(package)], cwd=package.parent,
                                  env=dict(os.environ, PYTHONPATH=str(package.parent)), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for package in packages]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, errors) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, errors
    return [output.strip() for output, _ in outputs]


def edit_function_body(path, function):
    """Add a statement at the end of `function`'s body in the module at `path`."""
    lines = path.read_text().splitlines(keepends=True)
    (definition,) = [node for node in ast.walk(ast.parse("".join(lines))) if getattr(node, "name", "") == function]
    last = definition.body[-1]
    lines.insert(last.end_lineno, " " * last.col_offset + "pass  # an edit by the test\n")
    path.write_text("".join(lines))


@pytest.mark.slow  # three interpreters importing torch: ~5 s on two cores
def test_the_key_changes_with_the_training_code_but_not_with_plots_widgets_or_exercises(tmp_path):
    original, shown_only, trained = (copy_package(tmp_path / name) for name in ("original", "shown", "trained"))
    for module in ("plotting/curves.py", "widgets/explorer.py", "exercises/harness.py"):
        with (shown_only / module).open("a") as file:
            file.write("\n# an edit by the test\n")
    edit_function_body(trained / "train.py", "train_model")
    keys = keys_of_packages([original, shown_only, trained])
    assert keys[1] == keys[0] != keys[2] and len(keys[0]) == 64
