"""Durable file writes shared by the spool, the outbox and the quarantine.

A file is durable once its bytes and its directory entry are both on disk: write to a
temporary name, fsync the file, rename it into place, fsync the directory (and, for a folder
made on the way, the folder it was made in). A process killed mid-write leaves only a temporary
``.incoming-*`` file, which :func:`sweep_leftovers` removes at the next start.

Folders are made 0700 and files 0600 (``mkstemp``), whatever the umask: the spool holds
patient data, and nothing the gateway writes is any other account's business.
"""

from __future__ import annotations

import ctypes
import errno
import functools
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
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another writer made it meanwhile, and synced its parent
        fsync_dir(folder.parent)


def make_hashed_folders(root: Path) -> None:
    """Make ``root`` and the 256 folders :func:`hashed_path` spreads files over, durably, those
    missing and nothing else: made once at start, no acknowledgement waits for a folder to be
    made and its parent synced (in a new spool, most of the first few hundred did)."""
    make_dirs_durably(root)
    missing = [root / f"{n:02x}" for n in range(256) if not (root / f"{n:02x}").is_dir()]
    for folder in missing:
        folder.mkdir(mode=0o700, exist_ok=True)
    if missing:
        fsync_dir(root)


def make_private_dirs(directory: Path) -> None:
    """``mkdir -p`` making every missing folder 0700 (``Path.mkdir(parents=True)`` would make
    the parents with the umask's mode)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def write_durably(path: Path, data: bytes, fsync: bool = True, sync_folder: bool = True) -> None:
    """Atomically create ``path`` holding ``data``; on any error nothing is left behind.

    ``fsync=False`` keeps the atomic rename but leaves flushing to the OS, for batch runs that
    acknowledge nothing to anyone and sync once at the end. ``sync_folder=False`` fsyncs the
    file but not the folder it is renamed into, for a caller that writes several files and
    fsyncs each of their folders once (:mod:`gateway.queue.recording`).
    """
    if fsync:
        make_dirs_durably(path.parent)
    else:
        make_private_dirs(path.parent)
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
    if fsync and sync_folder:
        fsync_dir(path.parent)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Bytes read at a time when a file is hashed or copied: memory stays flat whatever its size.
CHUNK_BYTES = 1024 * 1024


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a chunk at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else (another handle, another library) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _syncfs():
    """Linux's ``syncfs``, or None where the C library has none."""
    try:
        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int]
    return call


def sync_filesystem(directory: Path) -> None:
    """Write to disk everything written so far to the filesystem holding ``directory``; raises
    OSError when some of it could not be written.

    For a batch that wrote many files without an fsync each (``write_durably(fsync=False)``):
    one wait at the end. ``os.sync`` would wait for every disk of the machine, and says nothing
    when a write fails; Linux's ``syncfs`` (since 5.8) reports such an error. Elsewhere,
    ``os.sync`` it is.
    """
    call = _syncfs()
    if call is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        if call(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    finally:
        os.close(fd)


def move_durably(source: Path, target: Path) -> None:
    """Move a complete file to ``target`` durably, keeping its mode (0600 for temporaries).

    On the same filesystem this is a rename: no second copy is written. Across filesystems
    (a quarantine mounted elsewhere) the bytes are streamed to a temporary beside ``target``
    and renamed, then ``source`` is removed. Either way ``target`` appears whole or not at all.
    """
    fsync_file(source)
    make_dirs_durably(target.parent)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_durably(source, target)
        source.unlink()
    fsync_dir(target.parent)


def _copy_durably(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK_BYTES)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hashed_path(root: Path, digest: str, suffix: str = ".dcm") -> Path:
    """``root/ab/abcdef….dcm``: names from hashes only, spread over 256 folders."""
    return root / digest[:2] / f"{digest}{suffix}"


def free_bytes(directory: Path) -> int:
    make_private_dirs(directory)
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
