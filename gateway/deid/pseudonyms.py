"""Pseudonyms for PatientID / PatientName and the keyed hash for AccessionNumber.

A patient's pseudonym must be the same in every study, after every restart and on every worker.
Keyed-hash pseudonyms get that for free; sequential ones (``STUDY01-000123``) live in the
database, allocated under a unique constraint so two workers can never hand out one number
twice. A coordinator's pre-assigned mapping (CSV import) takes precedence over both.

The database is looked up by an HMAC of the original PatientID, never by the PatientID itself:
the original identity is only stored encrypted (see mapping.py), and only when a mapping key is
configured, so without the key nothing in the database can be traced back to a patient.

Accession numbers are hashed the same way unless a coordinator imported a research accession
number for the original (links.py); and each study's link from its de-identified Study UID and
accession back to the originals is kept, encrypted, for the coordinator (:meth:`link_study`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydicom import Dataset
from sqlalchemy.exc import SQLAlchemyError

from gateway.deid.config import DeidConfig, PseudonymConfig
from gateway.deid.hashes import accession_hash, hash_pseudonym, patient_key, project_secret
from gateway.deid.links import accession_key, imported_accession, record_study
from gateway.deid.mapping import ensure_subject, load_cipher
from gateway.pipeline.stage import StageUnavailable

if TYPE_CHECKING:
    from gateway.db import Database

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0


class PseudonymUnavailable(StageUnavailable):
    """The pseudonym database cannot be reached; retry the instance later (no value inside)."""


class PseudonymService:
    """Pseudonyms for one gateway: database-backed when a database is given, keyed hash otherwise."""

    def __init__(self, deid: DeidConfig | None, database: Database | None, secret: bytes):
        self.settings = deid.pseudonyms if deid is not None else PseudonymConfig()
        self.database = database
        self.secret = secret  # lookup keys (patients, accessions, studies): one for all projects
        self.namespace = secret  # the keyed hashes written into the output: one per project
        self._cache: dict[str, tuple[float, str]] = {}
        self._accessions: dict[str, tuple[float, str | None]] = {}
        self._linked: set[tuple[str, str]] = set()
        self._hashes: dict[str, str] = {}
        self._cipher = None
        if database is not None and deid is not None:
            self._cipher = load_cipher(deid.mapping, required=False)

    def for_project(self, project: str) -> PseudonymService:
        """The service of research project ``project`` (see ProfileSpec.project): the same
        database and mapping key, its own subject rows and its own keyed-hash namespace."""
        if project == self.settings.project:
            return self
        other = PseudonymService(None, self.database, self.secret)
        other.settings = self.settings.model_copy(update={"project": project})
        other.namespace = project_secret(self.secret, project)
        other._cipher = self._cipher
        return other

    def patient(self, patient_id: str, patient_name: str = "") -> str:
        """The pseudonym of ``patient_id``; used for both PatientID and PatientName."""
        key_source = patient_id.strip() or f"name:{patient_name.strip()}"
        if self.database is None:
            pseudonym = self._hashes.get(key_source)
            if pseudonym is None:
                if len(self._hashes) > 10000:
                    self._hashes.clear()
                pseudonym = self._hashes[key_source] = hash_pseudonym(self.settings, self.namespace, key_source)
            return pseudonym
        key = patient_key(self.secret, key_source)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            pseudonym = ensure_subject(
                self.database, self.settings, self.namespace, key, key_source, patient_name, self._cipher
            )
        except SQLAlchemyError as exc:
            # Not the instance's fault: the worker should retry later, not quarantine it.
            raise PseudonymUnavailable(f"pseudonym database unavailable ({type(exc).__name__})") from None
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now, pseudonym)
        return pseudonym

    def accession(self, value: str) -> str:
        """The coordinator's research accession number for ``value`` when one was imported,
        else the keyed hash (looked up again after CACHE_SECONDS, so an import takes effect)."""
        if self.database is not None:
            key = accession_key(self.secret, value)
            now = time.monotonic()
            cached = self._accessions.get(key)
            if cached is None or now - cached[0] >= CACHE_SECONDS:
                with _reachable():
                    cached = (now, imported_accession(self.database, self.settings.project, key))
                if len(self._accessions) > 10000:
                    self._accessions.clear()
                self._accessions[key] = cached
            if cached[1]:
                return cached[1]
        return accession_hash(self.namespace, value, self.settings.accession_length)

    def link_study(self, original: Dataset, output: Dataset, profile: str) -> None:
        """Keep the coordinator's link from ``output``'s de-identified Study UID and accession
        back to ``original``'s (encrypted; once per study and profile in this process)."""
        if self.database is None:
            return
        uid = str(original.get("StudyInstanceUID", "") or "")
        if (uid, profile) in self._linked:
            return
        with _reachable():
            record_study(self.database, self.settings.project, self.secret, self._cipher, profile, original, output)
        if len(self._linked) > 10000:
            self._linked.clear()
        self._linked.add((uid, profile))


@contextmanager
def _reachable() -> Iterator[None]:
    """A database error is not the instance's fault: the worker retries later."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise PseudonymUnavailable(f"pseudonym database unavailable ({type(exc).__name__})") from None
