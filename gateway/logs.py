"""Logging that cannot leak patient data through third-party libraries.

pydicom's validation warnings quote element values, and pynetdicom at DEBUG dumps whole
requests. The gateway's own messages carry counts and anonymized identifiers only; the
libraries are held at levels where they say nothing about a dataset's content.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom.config
from pydantic import Field

from gateway.settings_base import Section


class LoggingConfig(Section):
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    file: Path | None = None


def quiet_libraries() -> None:
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")
    warnings.filterwarnings("ignore", module=r"pynetdicom(\..*)?")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("tzlocal").setLevel(logging.WARNING)


def setup_logging(config: LoggingConfig) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if config.file:
        _private_log_file(config.file)
        handlers.append(logging.FileHandler(config.file))
    logging.basicConfig(
        level=config.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    quiet_libraries()


def _private_log_file(path: Path) -> None:
    """Create the log file 0600 (folders 0700) before logging opens it: the log names studies
    by de-identified UID, audit events and hosts, which are the site's business alone."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        try:
            path.chmod(0o600)
        except PermissionError:  # a log file another account owns: its owner decides
            pass


def describe_error(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message.

    Messages of library exceptions can quote dataset values, so they are never logged; the
    frames are enough to find the bug.
    """
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{_short_path(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


def _short_path(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple[int, int] | None = None


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """pydicom's value-validation warnings quote the offending value, which may be PHI; they
    would reach the log through pydicom's logger. Validation is switched to IGNORE while any
    engine run decodes values; the setting is process-wide, so it is reference-counted across
    threads and restored when the last concurrent run ends."""
    global _quiet_depth, _quiet_saved
    settings = pydicom.config.settings
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = (settings.reading_validation_mode, settings.writing_validation_mode)
            settings.reading_validation_mode = pydicom.config.IGNORE
            settings.writing_validation_mode = pydicom.config.IGNORE
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                settings.reading_validation_mode, settings.writing_validation_mode = _quiet_saved
