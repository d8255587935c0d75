"""The gateway's key, and every keyed hash made with it.

One secret keys everything that must be stable yet not guessable: replacement UIDs, patient
pseudonyms and lookup keys, accession hashes, date shifts, and the digests that identify
originals in the queue. All of them are HMAC-SHA256 over a purpose label followed by the value
(:func:`keyed_hash`). The labels are the bytes each digest has always been made from: two
conventions grew up ("study" + NUL in the queue, "uid:" in de-identification), and changing a
single byte would change every UID, pseudonym and date shift a site has already sent out.

Losing the key breaks consistency (the same patient gets a new pseudonym, UIDs change), so the
fallback key is created once and kept beside the gateway's data, readable by its user only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.deid.config import DeidConfig

# The purpose labels, exactly as fed to the HMAC (see the module's docstring).
STUDY = b"study\x00"
INSTANCE = b"instance\x00"
PATIENT = b"patient:"
PSEUDONYM = b"pseudonym:"
ACCESSION = b"accession:"
DATE_SHIFT = b"date-shift:"
UID = b"uid:"

KEY_FILE = Path("keys") / "uid-secret"


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
        data = Path(deid.secret_file).read_bytes().strip()
        if not data:
            raise ValueError("deid.secret_file is empty")
        return data
    return _kept_secret(Path(storage_root) / KEY_FILE)


def _kept_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
            return path.read_bytes().strip()
        return value
    finally:
        tmp.unlink(missing_ok=True)
