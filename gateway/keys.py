"""The gateway's key, and every keyed hash made with it.

One secret keys everything that must be stable yet not guessable: replacement UIDs, patient
pseudonyms and lookup keys, accession hashes, date shifts, and the digests that identify
originals in the queue. All of them are HMAC-SHA256 over a purpose label followed by the value
(:func:`keyed_hash`). The labels are the bytes each digest has always been made from: two
conventions grew up ("study" + NUL in the queue, "uid:" in de-identification), and changing a
single byte would change every UID, pseudonym and date shift a site has already sent out.

Losing the key breaks consistency (the same patient gets a new pseudonym, UIDs change), so the
fallback key is created once and kept beside the gateway's data, readable by its user only.
Anyone holding the key and the database can test guesses of patient IDs against the stored
lookup keys, so a site keeps it elsewhere (``deid.secret_file`` or DEID_GATEWAY_SECRET); every
file holding a key or a credential must be private to the gateway's user (:func:`check_private`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import ConfigError

if TYPE_CHECKING:
    from gateway.deid.config import DeidConfig

# The purpose labels, exactly as fed to the HMAC (see the module's docstring).
STUDY = b"study\x00"
INSTANCE = b"instance\x00"
PATIENT = b"patient:"
PSEUDONYM = b"pseudonym:"
ACCESSION = b"accession:"
ACCESSION_KEY = b"accession-key:"  # the lookup key of an original accession number (coordinator links)
PULL = b"pull:"  # a requested item of a pull (query/retrieve), and a whole pull's request list
DATE_SHIFT = b"date-shift:"
UID = b"uid:"

KEY_FILE = Path("keys") / "uid-secret"

log = logging.getLogger("gateway.keys")


class KeyFileError(ConfigError):
    """A key or credential file others could read; the message names the file, never its content."""


def check_private(path: Path, setting: str) -> None:
    """Refuse a key or credential file that the group or others may read or change.

    A key readable by another account is a key that account holds: the gateway would rather not
    start than quietly use it. ``setting`` names where the file is configured, for the message.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(
            f"{setting}: {path} is accessible to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"make it private to the gateway's user: chmod 600 {path}")


def read_private(path: Path, setting: str) -> bytes:
    """The stripped content of a key file, after :func:`check_private`."""
    check_private(path, setting)
    try:
        return Path(path).read_bytes().strip()
    except OSError as exc:
        raise KeyFileError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def keyed_hash(secret: bytes, purpose: bytes, value: bytes) -> bytes:
    """HMAC-SHA256 of ``purpose + value``: the one keyed hash of the gateway."""
    return hmac.new(secret, purpose + value, hashlib.sha256).digest()


def keyed_digest(secret: bytes, purpose: bytes, value: str) -> str:
    """:func:`keyed_hash` of a text value, in hex: the form stored in the database."""
    return keyed_hash(secret, purpose, value.encode("utf-8")).hex()


def load_secret(deid: DeidConfig, storage_root: Path) -> bytes:
    """The secret: ``deid.secret`` (env DEID_GATEWAY_SECRET folded in), else ``deid.secret_file``,
    else a key kept under ``storage_root``, made on first use."""
    if deid.secret is not None and deid.secret.get_secret_value():
        return deid.secret.get_secret_value().encode("utf-8")
    if deid.secret_file is not None:
        data = read_private(Path(deid.secret_file), "deid.secret_file")
        if not data:
            raise KeyFileError(f"deid.secret_file: {deid.secret_file} is empty")
        if Path(storage_root).resolve() in Path(deid.secret_file).resolve().parents:
            log.warning("deid.secret_file is under storage.root, beside the database: keep it "
                        "elsewhere (see docs/security.md)")
        return data
    path = Path(storage_root) / KEY_FILE
    log.warning("the HMAC secret is kept at %s, beside the database: whoever holds both can test "
                "guesses of patient IDs; keep it elsewhere (deid.secret_file, see docs/security.md)", path)
    return _kept_secret(path)


def _kept_secret(path: Path) -> bytes:
    setting = "the kept HMAC secret (deid.secret_file unset)"
    if path.exists():
        return read_private(path, setting)
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    value = secrets.token_hex(32).encode("ascii")
    # Written in full to a private temporary file, then linked into place: when two workers
    # start together exactly one link succeeds, and nobody ever reads a half-written key.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_private(path, setting)
        return value
    finally:
        tmp.unlink(missing_ok=True)
