"""Files and folders the project writes for others to read (the run cache, the student edition, exported figures)."""

import os
import tempfile
from pathlib import Path

READABLE_BY_ALL = 0o644  # owner writes, everyone reads: a class reads the instructor's cache
FOLDER_READABLE_BY_ALL = 0o755  # owner writes, everyone lists and enters


def make_folder(path):
    """Create the folder `path` and its missing parents, each with mode 0755 whatever the umask; returns it as a Path.

    Folders that exist keep their mode. A class must be able to enter the instructor's cache folder: under a
    umask of 077, `mkdir` alone would make it private.
    """
    path = Path(path)
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):  # outermost first
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process, with its maker's mode
            continue
        os.chmod(folder, FOLDER_READABLE_BY_ALL)
    if not path.is_dir():
        raise NotADirectoryError(f"path must be a folder or not exist yet, got {str(path)!r}, which is not a folder")
    return path


def write_atomic(path, payload: bytes):
    """Write `payload` to `path` in one step, with mode 0644 whatever the umask.

    The bytes go to a temporary file beside `path` (same file system), are flushed to disk, then renamed
    over `path`: a crash or Ctrl-C leaves the old file (or none), never a partial one, and no temporary file.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, READABLE_BY_ALL)
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(temporary).unlink(missing_ok=True)
        raise
