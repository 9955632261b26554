"""Private files: the data folder holds pictures of people and login secrets, so it is created 0700 and what the
app writes into it 0600, whatever the process's umask."""

import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) mode 0700; an existing folder keeps its mode (it may be shared, as /tmp
    is), with a warning if others can read it. OSError if it cannot be created."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is reduced by the umask
    elif path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users of this machine: chmod 700 it", path)
    return path


def recreate_private_dir(path: Path) -> Path:
    """Create `path` again if it has gone (the data folder deleted while the app runs), it and each missing parent
    0700; an existing folder is left as it is, without a warning (this runs for each file written). OSError if it
    cannot be created."""
    path = missing = Path(path)
    gone = []
    while not missing.is_dir() and missing.parent != missing:
        gone.append(missing)
        missing = missing.parent
    for folder in reversed(gone):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    return path


def open_private(path: Path, mode: str = "a", encoding: str | None = "utf-8") -> IO:
    """`open(path, mode)` that creates a missing file 0600."""
    flags = {"a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC}
    return open(  # noqa: SIM115 - the caller closes it (with ...)
        path, mode, encoding=encoding, opener=lambda name, _: os.open(name, flags[mode[0]], FILE_MODE)
    )


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 0600: a reader sees the old file or the new one, never half."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:  # mkstemp creates it 0600
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def create_private(path: Path, data: bytes) -> bool:
    """Write `data` to `path` (0600) only if it does not exist yet; False if it did (then nothing is written)."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return True
