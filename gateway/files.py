"""Durable file writes shared by the spool, the outbox and the quarantine.

A file is durable once its bytes and its directory entry are both on disk: write to a
temporary name, fsync the file, rename it into place, fsync the directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, fsync: bool = True) -> None:
    """Atomically create ``path`` holding ``data``; on any error nothing is left behind.

    ``fsync=False`` keeps the atomic rename but leaves flushing to the OS, for batch runs that
    acknowledge nothing to anyone and sync once at the end.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashed_path(root: Path, digest: str, suffix: str = ".dcm") -> Path:
    """``root/ab/abcdef….dcm``: names from hashes only, spread over 256 folders."""
    return root / digest[:2] / f"{digest}{suffix}"


def free_bytes(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(directory).free
