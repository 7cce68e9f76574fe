"""One run cache for every notebook: a result is computed once per configuration and read back from disk after that.

An entry is two files named by the sha256 of the whole configuration (what the caller passes,
plus a fingerprint of the data, the device type, torch's version and a fingerprint of bnlib's code):
`<key>.json` holds the JSON record and names the tensor file `<key>-<sha256 prefix>.pt` with its
sha256, so a truncated or corrupt tensor file is detected. Tensors load with
`torch.load(weights_only=True)`: no pickle. Files are written atomically, readable by everyone (0644).

A lookup reads the shared cache `$BNLIB_SHARED_CACHE` first (an instructor's warm cache on a hub, never
written), then the personal one (`$BNLIB_CACHE_DIR`), where new entries go. A folder that cannot be read
or written never stops a notebook: one warning line names it and the reason, and the result is returned.
"""

import functools
import hashlib
import io
import json
import os
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bnlib.config import env_flag, resolve_path
from bnlib.files import make_folder, write_atomic
from bnlib.runtime import resolve_device

CACHE_DIR_ENV = "BNLIB_CACHE_DIR"
SHARED_CACHE_ENV = "BNLIB_SHARED_CACHE"  # read before BNLIB_CACHE_DIR, never written: the instructor's warm cache
RETRAIN_ENV = "BNLIB_RETRAIN"  # "1": compute again and overwrite
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_CACHE_DIR = PACKAGE_DIR.parent / "build" / "cache"
CACHE_FORMAT = 2  # bump when the stored entry changes shape
# The code that computes cached results, besides bnlib's top-level modules (the core); plotting/, widgets/ and
# exercises/ only show results, so editing a figure or an exercise check keeps the cache.
FINGERPRINTED_FOLDERS = ("stats", "studies")


@dataclass
class CacheEntry:
    """One result: its record, its tensors, whether it came from disk, when it was computed, its key and folder."""

    record: dict
    tensors: dict = field(default_factory=dict)  # name -> torch.Tensor (on the CPU)
    cached: bool = False
    trained_at: float = 0.0  # unix time
    key: str = ""
    folder: Path | None = None  # where it was read from or stored; None when it could not be stored


class CorruptEntry(Exception):
    """A cache entry, or its folder, that exists but cannot be used (unreadable, truncated, edited, another config)."""


def resolve_cache_dir(path=None):
    """The cache folder: `path` if given, else `$BNLIB_CACHE_DIR`, else the repository's `build/cache`."""
    return resolve_path(path, CACHE_DIR_ENV, REPO_CACHE_DIR)


def resolve_shared_cache_dir():
    """The shared, read-only cache folder `$BNLIB_SHARED_CACHE` (absolute), or None when it is not set."""
    return resolve_path(None, SHARED_CACHE_ENV, None) if os.environ.get(SHARED_CACHE_ENV) else None


def lookup_folders(folder):
    """The folders a lookup reads, in order: the shared cache when one is set (and is not `folder`), then `folder`."""
    folder, shared = Path(folder), resolve_shared_cache_dir()
    return [folder] if shared is None or shared == folder.resolve() else [shared, folder]


def describe_folders(folder):
    """The folders a lookup reads, as text for a notebook: "/hub/cache (shared), then /home/me/cache"."""
    return ", then ".join([*(f"{path} (shared)" for path in lookup_folders(folder)[:-1]), str(folder)])


# data -> (its tensors' in-place version counters, fingerprint): hashing full MNIST takes ~0.2 s, and a
# sweep asks for the same data set's fingerprint once per run.
_fingerprints = weakref.WeakKeyDictionary()


def fingerprint_data(data):
    """A short description of `data` (an MNISTSplits) for cache keys: sizes and a sha256 of every byte.

    Remembered per data object until one of its tensors changes in place.
    """
    versions = tuple(tensor._version for split in ("train", "valid", "test") for tensor in getattr(data, split))
    known = _fingerprints.get(data)
    if known is not None and known[0] == versions:
        return known[1]
    fingerprint = _hash_data(data)
    _fingerprints[data] = (versions, fingerprint)
    return fingerprint


def _hash_data(data):
    digest = hashlib.sha256()
    sizes = {}
    for split in ("train", "valid", "test"):
        images, labels = getattr(data, split)
        digest.update(images.detach().cpu().contiguous().numpy())
        digest.update(labels.detach().cpu().contiguous().numpy())
        sizes[split] = len(labels)
    return {"sizes": sizes, "sha256": digest.hexdigest()}


def fingerprinted_sources():
    """The source files in the code fingerprint: bnlib's top-level modules, stats/ and studies/, sorted by path."""
    files = list(PACKAGE_DIR.glob("*.py"))
    for folder in FINGERPRINTED_FOLDERS:
        files += (PACKAGE_DIR / folder).rglob("*.py")
    return sorted(files, key=lambda path: path.relative_to(PACKAGE_DIR).as_posix())


@functools.cache  # once per process: a kernel runs the code it imported, so an edit takes effect on restart anyway
def code_fingerprint():
    """The sha256 of the code that computes cached results (relative path and bytes of each fingerprinted source).

    Part of every key: editing `train_model` or an initialization computes again instead of reading old numbers.
    """
    digest = hashlib.sha256()
    for path in fingerprinted_sources():
        source = path.read_bytes()
        digest.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()


def full_config(config, data_fingerprint=None, device=None):
    """`config` with what the caller does not pass: the data's fingerprint, device type, torch's version, the code."""
    device = resolve_device(device)
    return {
        "format": CACHE_FORMAT,
        "config": config,
        "data": data_fingerprint,
        "device_type": device.type,
        "torch": str(torch.__version__),
        "code": code_fingerprint(),
    }


def config_key(config):
    """The sha256 of the configuration's canonical JSON (sorted keys): the entry's file name."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def retrain_requested():
    """True when `$BNLIB_RETRAIN` asks to compute every entry again (1, true or yes)."""
    return env_flag(RETRAIN_ENV)


def write_entry(folder, config, record, tensors=None, description=""):
    """Store `record` (JSON-able) and `tensors` under `config`'s key in `folder`; returns the CacheEntry.

    A folder that cannot be written (read-only, full, not a folder) gives one warning line naming it and
    the reason, and the entry is returned all the same, not stored (its `folder` is None).
    """
    key, trained_at = config_key(config), time.time()
    # clone: torch.save writes a view's whole storage, and the caller keeps its own tensors
    tensors = {name: tensor.detach().cpu().clone() for name, tensor in (tensors or {}).items()}
    stored = {"config": config, "description": description, "trained_at": trained_at, "record": record}
    try:
        folder = _write_files(make_folder(folder), key, stored, tensors)  # 0755: a class reads the instructor's cache
    except OSError as error:  # Python's default filter shows a text once per caller: a grid of runs warns once
        reason = error.strerror or error
        warnings.warn(f"Run cache: cannot write to {folder} ({reason}); the result is not kept.", stacklevel=2)
        folder = None
    return CacheEntry(record, tensors, cached=False, trained_at=trained_at, key=key, folder=folder)


def _write_files(folder, key, stored, tensors):
    """Write the entry's files into `folder` (returned); raises OSError when they cannot be written.

    The tensor file is written first, then the JSON that names it: a reader never sees a record
    whose tensors are missing. Older tensor files of the same key are removed afterwards.
    """
    tensor_path = None
    if tensors:
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        tensor_path = folder / f"{key}-{digest[:16]}.pt"  # by content: the old JSON's file stays valid until replaced
        existed = tensor_path.exists()
        write_atomic(tensor_path, payload)
        stored["tensors"] = {"file": tensor_path.name, "sha256": digest, "bytes": len(payload)}
    try:
        write_atomic(folder / f"{key}.json", json.dumps(stored).encode())
    except BaseException:
        if tensor_path is not None and not existed:
            tensor_path.unlink(missing_ok=True)
        raise
    for stale in folder.glob(f"{key}-*.pt"):
        if tensor_path is None or stale.name != tensor_path.name:
            stale.unlink(missing_ok=True)
    return folder


def read_entry(folder, config):
    """The CacheEntry stored under `config`'s key in `folder`, or None when there is none.

    Raises CorruptEntry, saying what is wrong, when the entry is unreadable (a file or folder without read
    permission), truncated, or was made with another configuration.
    """
    key = config_key(config)
    path = Path(folder) / f"{key}.json"
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):  # a cache never written, or a file in its place: the write says so
        return None
    except OSError as error:  # another user's private file or folder, a broken disk
        raise CorruptEntry(f"cannot read {path} ({error.strerror or error})") from error
    try:
        stored = json.loads(text)
        if not isinstance(stored, dict) or stored.get("config") != config or not isinstance(stored.get("record"), dict):
            raise CorruptEntry(f"{path} was made with another configuration or is incomplete")
        tensors = _read_tensors(Path(folder), stored.get("tensors"))
        return CacheEntry(stored["record"], tensors, cached=True, trained_at=float(stored["trained_at"]), key=key,
                          folder=Path(folder))  # fmt: skip
    except CorruptEntry:
        raise
    except Exception as error:  # json, torch.load (unpickling refused, bad zip), a missing field: never stop a class
        raise CorruptEntry(f"{path} cannot be read ({type(error).__name__}: {error})") from error


def _read_tensors(folder, description):
    if description is None:
        return {}
    payload = (folder / description["file"]).read_bytes()
    if len(payload) != description["bytes"] or hashlib.sha256(payload).hexdigest() != description["sha256"]:
        name, size = description["file"], description["bytes"]
        raise CorruptEntry(f"{name} is truncated or changed ({len(payload)} bytes, {size} stored)")
    tensors = torch.load(io.BytesIO(payload), weights_only=True)  # tensors and plain containers only, no pickle
    if not isinstance(tensors, dict) or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
        raise CorruptEntry(f"{description['file']} does not hold a dict of tensors")
    return tensors


def _check_folder(place, shared):
    """Raise CorruptEntry when `place` cannot be read at all (the same text for every entry: it warns once)."""
    if shared and not os.path.isdir(place):  # a typo in its path; a missing personal cache is made on the first write
        raise CorruptEntry(f"the shared cache {place} ({SHARED_CACHE_ENV}) is not a folder")
    if os.path.isdir(place) and not os.access(place, os.X_OK):
        raise CorruptEntry(f"cannot open the folder {place} (permission denied)")


def lookup(folder, config):
    """The stored entry from the shared cache, else from `folder`; None when `$BNLIB_RETRAIN` is set or neither has it.

    An entry or folder that cannot be read (corrupt, no permission) gives one warning line: what is done instead.
    """
    if retrain_requested():
        return None
    folders, problems, entry = lookup_folders(folder), [], None
    for place in folders:
        try:
            _check_folder(place, shared=place in folders[:-1])
            entry = read_entry(place, config)
        except CorruptEntry as error:
            problems.append(str(error))
        if entry is not None:
            break
    instead = "computing it again" if entry is None else f"read from {entry.folder} instead"
    for problem in problems:
        warnings.warn(f"Run cache: {problem}; {instead}.", stacklevel=3)
    return entry


def describe_source(entry, description):
    """One line for the notebook: what was read, when it was computed, from where, and how to compute it again."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.trained_at))
    shared = entry.folder == resolve_shared_cache_dir()
    again = f"{RETRAIN_ENV}=1" + (" (into your own cache)" if shared else ", or delete that folder")
    where = f"the {'shared ' if shared else ''}run cache (trained {when}, {entry.folder})"
    return f"{description}: read from {where}. To train again: {again}."


def cached(config, compute, *, data=None, device=None, description, cache_dir=None, verbose=True):
    """The CacheEntry of `compute()` for `config`: read from the cache when stored, else computed and stored.

    `config` is a JSON-able dict of everything that decides the result; the data fingerprint,
    device type and versions are added to the key here. `compute()` returns (record, tensors);
    a record with `interrupted` true is returned but not stored. With `verbose`, reading from the
    cache prints one line saying so. The shared cache (`$BNLIB_SHARED_CACHE`) is read first; new entries go
    to `cache_dir` (default `$BNLIB_CACHE_DIR`).
    """
    folder = resolve_cache_dir(cache_dir)
    config = full_config(config, None if data is None else fingerprint_data(data), device)
    entry = lookup(folder, config)
    if entry is not None:
        if verbose:
            print(describe_source(entry, description))
        return entry
    record, tensors = compute()
    if record.get("interrupted"):
        return CacheEntry(record, dict(tensors or {}), cached=False, trained_at=time.time(), key=config_key(config))
    return write_entry(folder, config, record, tensors, description)
