"""Durable file writes shared by the spool, the outbox and the quarantine.

A file is durable once its bytes and its directory entry are both on disk: write to a
temporary name, fsync the file, rename it into place, fsync the directory (and, for a folder
made on the way, the folder it was made in). A process killed mid-write leaves only a temporary
``.incoming-*`` file, which :func:`sweep_leftovers` removes at the next start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TEMPORARY_PREFIX = ".incoming-"


def make_dirs_durably(directory: Path) -> None:
    """``mkdir -p`` whose new folders survive a power cut: each one's parent is fsynced."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # another writer made it meanwhile, and synced its parent
        fsync_dir(folder.parent)


def write_durably(path: Path, data: bytes, fsync: bool = True) -> None:
    """Atomically create ``path`` holding ``data``; on any error nothing is left behind.

    ``fsync=False`` keeps the atomic rename but leaves flushing to the OS, for batch runs that
    acknowledge nothing to anyone and sync once at the end.
    """
    if fsync:
        make_dirs_durably(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY_PREFIX)
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


def sweep_leftovers(roots: list[Path], older_than: float) -> int:
    """Delete temporary files (half-written spool, outbox and intermediate files) under
    ``roots`` that nobody has written to for ``older_than`` seconds; returns how many.

    A writer still at work keeps touching its file, and another process on the same spool may be
    one, so only files idle for longer than any transfer may stall are taken as abandoned.
    """
    cutoff = time.time() - older_than
    removed = 0
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob(f"{TEMPORARY_PREFIX}*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # finished (renamed) or removed by another sweep meanwhile
    return removed
