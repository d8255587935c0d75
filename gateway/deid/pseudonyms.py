"""Pseudonyms for PatientID / PatientName and the keyed hash for AccessionNumber.

A patient's pseudonym must be the same in every study, after every restart and on every worker.
Keyed-hash pseudonyms get that for free; sequential ones (``STUDY01-000123``) live in the
database, allocated under a unique constraint so two workers can never hand out one number
twice. A coordinator's pre-assigned mapping (CSV import) takes precedence over both.

The database is looked up by an HMAC of the original PatientID, never by the PatientID itself:
the original identity is only stored encrypted (see mapping.py), and only when a mapping key is
configured, so without the key nothing in the database can be traced back to a patient.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING

from gateway.deid.config import PseudonymConfig

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.db import Database

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0


class PseudonymUnavailable(RuntimeError):
    """The pseudonym database cannot be reached; retry the instance later (no value inside)."""


def patient_key(secret: bytes, patient_id: str) -> str:
    """The database lookup key of a patient: HMAC-SHA256 of the original PatientID, hex."""
    return hmac.new(secret, b"patient:" + patient_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def hash_pseudonym(settings: PseudonymConfig, secret: bytes, patient_id: str) -> str:
    digest = hmac.new(secret, b"pseudonym:" + patient_id.strip().encode("utf-8"), hashlib.sha256).digest()
    text = base64.b32encode(digest).decode("ascii").rstrip("=")[: settings.hash_length]
    return settings.hash_pattern.format(project=settings.project, hash=text)[:64]


def accession_hash(secret: bytes, value: str, length: int = 16) -> str:
    digest = hmac.new(secret, b"accession:" + value.strip().encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:length]


class PseudonymService:
    """Pseudonyms for one gateway: database-backed when a database is given, keyed hash otherwise."""

    def __init__(self, config: GatewayConfig | None, database: Database | None, secret: bytes):
        self.settings = config.deid.pseudonyms if config is not None else PseudonymConfig()
        self.config = config
        self.database = database
        self.secret = secret
        self._cache: dict[str, tuple[float, str]] = {}
        self._hashes: dict[str, str] = {}
        self._cipher = None
        if database is not None and config is not None:
            from gateway.deid.mapping import load_cipher

            self._cipher = load_cipher(config.deid.mapping, required=False)

    def patient(self, patient_id: str, patient_name: str = "") -> str:
        """The pseudonym of ``patient_id``; used for both PatientID and PatientName."""
        key_source = patient_id.strip() or f"name:{patient_name.strip()}"
        if self.database is None:
            pseudonym = self._hashes.get(key_source)
            if pseudonym is None:
                if len(self._hashes) > 10000:
                    self._hashes.clear()
                pseudonym = self._hashes[key_source] = hash_pseudonym(self.settings, self.secret, key_source)
            return pseudonym
        key = patient_key(self.secret, key_source)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        from sqlalchemy.exc import SQLAlchemyError

        from gateway.deid.mapping import ensure_subject

        try:
            pseudonym = ensure_subject(
                self.database, self.settings, self.secret, key, key_source, patient_name, self._cipher
            )
        except SQLAlchemyError as exc:
            # Not the instance's fault: the worker should retry later, not quarantine it.
            raise PseudonymUnavailable(f"pseudonym database unavailable ({type(exc).__name__})") from None
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now, pseudonym)
        return pseudonym

    def accession(self, value: str) -> str:
        return accession_hash(self.secret, value, self.settings.accession_length)
