"""Writing files only their owner can read, atomically (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from crmbridge.errors import ConfigError


def _write_temp(folder: Path, name: str, data: bytes) -> Path:
    """A new 0600 file in ``folder`` holding ``data``, flushed to disk."""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; the file is readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = _write_temp(path.parent, path.name, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def create_private_file_once(path: Path, data: bytes) -> bytes:
    """Create ``path`` holding ``data`` unless it exists; return what the file holds.

    When two processes race, exactly one file wins and both return its content, so they never
    go on with different keys.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = _write_temp(path.parent, path.name, data)
    try:
        os.link(temp, path)  # fails if the file exists: never replaces it
    except FileExistsError:
        return path.read_bytes()
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return data


def check_private(path: Path, what: str) -> None:
    """Refuse a file that users other than its owner can read or write (POSIX only)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the {what} {path} can be read or changed by other users (mode {mode:04o}); "
            f"make it private with: chmod 600 {path}"
        )
