"""The four MNIST files on disk in torchvision's layout: their sizes and md5s, checked before they are read.

A file's md5 is computed again only when it changed since it last matched: the check is remembered beside the
files, or in the run cache where their folder is read-only (a class's shared copy).
"""

import contextlib
import hashlib
import json
import os
from pathlib import Path

from bnlib.cache import resolve_cache_dir
from bnlib.files import make_folder, write_atomic

DATA_DIR_ENV = "BNLIB_DATA_DIR"
MD5_STAMP = ".bnlib-md5-checked.json"  # in MNIST/raw: {file name: [size, mtime_ns, inode, md5]} of files that matched
MD5_STAMP_FOLDER = "mnist-md5-checked"  # in the run cache: the same, for a read-only MNIST/raw folder

# The four uncompressed files torchvision reads from <root>/MNIST/raw/: (bytes, md5).
MNIST_FILES = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637"),
}


class MNISTFileError(RuntimeError):
    """An MNIST file on disk is missing, truncated or corrupt."""


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_state(path, md5):
    """What identifies a checked file: [size, modification time (ns), inode, the md5 it was checked against]."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ino, md5]


def _stamp_path(raw):
    """Where the md5 checks of the files in `raw` are remembered: beside them where the folder is writable (by its
    mode, which root would override), else in the run cache, one file per folder (a class's read-only data)."""
    if raw.stat().st_mode & 0o222 and os.access(raw, os.W_OK):
        return raw / MD5_STAMP
    folder_id = hashlib.sha256(str(raw.resolve()).encode()).hexdigest()[:16]
    return resolve_cache_dir() / MD5_STAMP_FOLDER / f"{folder_id}.json"


def _read_stamp(path):
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return {}


def _write_stamp(path, states):
    """Remember the checked files' states; where `path` cannot be written, the next load checks them again."""
    with contextlib.suppress(OSError):
        make_folder(path.parent)
        write_atomic(path, json.dumps(states).encode())


def check_mnist_files(root):
    """True when all four MNIST files under `root/MNIST/raw` are intact, False when none is there.

    Raises MNISTFileError, naming the file and the fix, when some are missing or any has a
    wrong size or md5 (torchvision would fail with an unnamed shape error, or load bad pixels).
    The md5 of a file is computed again only when its size, modification time or inode changed
    since it last matched (the MD5_STAMP file beside them, or in the run cache where their folder is read-only).
    """
    raw = Path(root) / "MNIST" / "raw"
    if not any((raw / name).exists() for name in MNIST_FILES):
        return False
    fix = f"delete it and download MNIST again, or point {DATA_DIR_ENV} at a good copy"
    stamp_path = _stamp_path(raw)
    stamp, states = _read_stamp(stamp_path), {}
    for name, (size, md5) in MNIST_FILES.items():
        path = raw / name
        if not path.exists():
            raise MNISTFileError(f"MNIST file {path} is missing (the other files are there); {fix}.")
        states[name] = _file_state(path, md5)
        if states[name][0] != size:
            raise MNISTFileError(f"MNIST file {path} has {states[name][0]} bytes, expected {size} (truncated?); {fix}.")
        if stamp.get(name) != states[name] and (actual := _md5(path)) != md5:
            raise MNISTFileError(f"MNIST file {path} is corrupt (md5 {actual}, expected {md5}); {fix}.")
    if states != stamp:
        _write_stamp(stamp_path, states)
    return True
