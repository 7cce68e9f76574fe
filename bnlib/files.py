"""Files the project writes for others to read (cache entries, the grid's records, the student edition)."""

import os
import tempfile
from pathlib import Path

READABLE_BY_ALL = 0o644  # owner writes, everyone reads: a class reads the instructor's cache


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
