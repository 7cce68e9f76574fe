"""bnlib.files: write_atomic writes the whole payload or leaves the old file, never a partial one; what it writes and
the folders make_folder creates are readable by everyone; and bnlib writes no file any other way."""

import ast
from pathlib import Path

import pytest

from bnlib import files


def test_the_written_file_has_mode_0644_whatever_the_umask(tmp_path, private_umask):
    path = tmp_path / "entry.json"
    files.write_atomic(path, b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}' and path.stat().st_mode & 0o777 == 0o644
    files.write_atomic(path, b'{"a": 2}')  # replacing an existing file
    assert path.read_bytes() == b'{"a": 2}' and path.stat().st_mode & 0o777 == 0o644
    assert [child.name for child in tmp_path.iterdir()] == ["entry.json"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt(), OSError("disk full")], ids=["Ctrl-C", "disk full"])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, interruption):
    path = tmp_path / "entry.json"
    files.write_atomic(path, b"old")

    def interrupt(descriptor):  # after the bytes are written, before the rename
        raise interruption

    monkeypatch.setattr(files.os, "fsync", interrupt)
    with pytest.raises(type(interruption)):
        files.write_atomic(path, b"new, longer than the old")
    assert path.read_bytes() == b"old"
    assert [child.name for child in tmp_path.iterdir()] == ["entry.json"]


def test_an_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    def interrupt(path, mode):  # the last step before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "chmod", interrupt)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(tmp_path / "entry.json", b"new")
    assert list(tmp_path.iterdir()) == []


def mode(path):
    return path.stat().st_mode & 0o777


def test_make_folder_creates_folders_readable_by_everyone_whatever_the_umask(tmp_path, private_umask):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert files.make_folder(private / "build" / "cache") == private / "build" / "cache"
    assert [mode(folder) for folder in (private, private / "build", private / "build" / "cache")] == [
        0o700,  # an existing folder keeps its mode
        0o755,
        0o755,
    ]
    assert files.make_folder(str(private / "build")) == private / "build"  # already there: nothing to do


def test_make_folder_refuses_a_file(tmp_path):
    (tmp_path / "results").write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match="path must be a folder"):
        files.make_folder(tmp_path / "results")


PACKAGE_DIR = Path(files.__file__).resolve().parent
WRITING_METHODS = {"write_text", "write_bytes", "mkdir", "makedirs", "touch", "save"}  # save: torch.save
ALLOWED = {
    ("cache.py", "save"),  # torch.save into an io.BytesIO, whose bytes go to write_atomic
    ("studies/process_group.py", "save"),  # torch.save into an io.BytesIO: a rank's result travels through a queue
}


def _writing_call(node):
    """The name of a call that writes a file or makes a folder (open with a writing mode included), or None."""
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    modes = [*node.args[1:2], *(keyword.value for keyword in node.keywords if keyword.arg == "mode")]
    writes_mode = any(isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+") for mode in modes)
    return name if name in WRITING_METHODS or (name == "open" and writes_mode) else None


def test_bnlib_writes_files_only_through_bnlib_files():
    """So every file the run cache (the placement grid's records included) writes is atomic, 0644, in 0755 folders."""
    found = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path == PACKAGE_DIR / "files.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _writing_call(node):
                found.add((path.relative_to(PACKAGE_DIR).as_posix(), _writing_call(node)))
    assert found == ALLOWED
