"""Where the key for every keyed hash (UIDs, pseudonyms, date offsets) comes from.

Losing the key breaks consistency (the same patient gets a new pseudonym, UIDs change), so the
fallback key is created once and kept beside the gateway's data, readable by its user only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.config import GatewayConfig

KEY_FILE = Path("keys") / "uid-secret"


def load_secret(config: GatewayConfig) -> bytes:
    """The secret: config (env DEID_GATEWAY_SECRET folded in), else secret_file, else a kept file."""
    deid = config.deid
    if deid.secret is not None and deid.secret.get_secret_value():
        return deid.secret.get_secret_value().encode("utf-8")
    if deid.secret_file is not None:
        data = Path(deid.secret_file).read_bytes().strip()
        if not data:
            raise ValueError("deid.secret_file is empty")
        return data
    return _kept_secret(Path(config.storage.root) / KEY_FILE)


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
