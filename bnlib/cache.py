"""One run cache for every notebook: a result is computed once per configuration and read back from disk after that.

An entry is two files named by the sha256 of the whole configuration (what the caller passes,
plus a fingerprint of the data, the device type, torch's version and a fingerprint of bnlib's code):
`<key>.json` holds the JSON record and names the tensor file `<key>-<sha256 prefix>.pt` with its
sha256, so a truncated or corrupt tensor file is detected. Tensors load with
`torch.load(weights_only=True)`: no pickle. Files are written atomically, readable by everyone (0644).
"""

import functools
import hashlib
import io
import json
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
RETRAIN_ENV = "BNLIB_RETRAIN"  # "1": compute again and overwrite
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_CACHE_DIR = PACKAGE_DIR.parent / "build" / "cache"
CACHE_FORMAT = 2  # bump when the stored entry changes shape
# The code that computes cached results, besides bnlib's top-level modules (the core); plotting/, widgets/ and
# exercises/ only show results, so editing a figure or an exercise check keeps the cache.
FINGERPRINTED_FOLDERS = ("stats", "studies")


@dataclass
class CacheEntry:
    """One result: its JSON record, its tensors, whether it came from disk, when it was computed, and its key."""

    record: dict
    tensors: dict = field(default_factory=dict)  # name -> torch.Tensor (on the CPU)
    cached: bool = False
    trained_at: float = 0.0  # unix time
    key: str = ""


class CorruptEntry(Exception):
    """A cache entry that exists but cannot be used (truncated, edited, or from another configuration)."""


def resolve_cache_dir(path=None):
    """The cache folder: `path` if given, else `$BNLIB_CACHE_DIR`, else the repository's `build/cache`."""
    return resolve_path(path, CACHE_DIR_ENV, REPO_CACHE_DIR)


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

    The tensor file is written first, then the JSON that names it: a reader never sees a record
    whose tensors are missing. Older tensor files of the same key are removed afterwards.
    """
    folder = make_folder(folder)  # 0755: a class reads the instructor's cache
    key, trained_at = config_key(config), time.time()
    # clone: torch.save writes a view's whole storage, and the caller keeps its own tensors
    tensors = {name: tensor.detach().cpu().clone() for name, tensor in (tensors or {}).items()}
    stored = {"config": config, "description": description, "trained_at": trained_at, "record": record}
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
    return CacheEntry(record, tensors, cached=False, trained_at=trained_at, key=key)


def read_entry(folder, config):
    """The CacheEntry stored under `config`'s key in `folder`, or None when there is none.

    Raises CorruptEntry, saying what is wrong, when the entry is unreadable, truncated, or was made
    with another configuration.
    """
    key = config_key(config)
    path = Path(folder) / f"{key}.json"
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict) or stored.get("config") != config or not isinstance(stored.get("record"), dict):
            raise CorruptEntry(f"{path.name} was made with another configuration or is incomplete")
        tensors = _read_tensors(Path(folder), stored.get("tensors"))
        return CacheEntry(stored["record"], tensors, cached=True, trained_at=float(stored["trained_at"]), key=key)
    except CorruptEntry:
        raise
    except Exception as error:  # json, torch.load (unpickling refused, bad zip), a missing field: never stop a class
        raise CorruptEntry(f"{path.name} cannot be read ({type(error).__name__}: {error})") from error


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


def lookup(folder, config):
    """The stored entry, or None when it is missing, corrupt (with a one-line warning) or `$BNLIB_RETRAIN` is set."""
    if retrain_requested():
        return None
    try:
        return read_entry(folder, config)
    except CorruptEntry as error:
        warnings.warn(f"Run cache: {error}; computing it again.", stacklevel=3)
        return None


def describe_source(entry, description, folder):
    """One line for the notebook: what was read, when it was computed, and how to compute it again."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.trained_at))
    return (
        f"{description}: read from the run cache (trained {when}, {folder}). "
        f"To train again: {RETRAIN_ENV}=1, or delete that folder."
    )


def cached(config, compute, *, data=None, device=None, description, cache_dir=None, verbose=True):
    """The CacheEntry of `compute()` for `config`: read from the cache when stored, else computed and stored.

    `config` is a JSON-able dict of everything that decides the result; the data fingerprint,
    device type and versions are added to the key here. `compute()` returns (record, tensors);
    a record with `interrupted` true is returned but not stored. With `verbose`, reading from the
    cache prints one line saying so.
    """
    folder = resolve_cache_dir(cache_dir)
    config = full_config(config, None if data is None else fingerprint_data(data), device)
    entry = lookup(folder, config)
    if entry is not None:
        if verbose:
            print(describe_source(entry, description, folder))
        return entry
    record, tensors = compute()
    if record.get("interrupted"):
        return CacheEntry(record, dict(tensors or {}), cached=False, trained_at=time.time(), key=config_key(config))
    return write_entry(folder, config, record, tensors, description)
