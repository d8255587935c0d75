"""The pseudonym <-> identity mapping: allocation, CSV import, lookup, export.

The original identity is only ever stored encrypted with the mapping key (Fernet), which is read
from a file or an environment variable and never written to the database. Functions that return
identities (``lookup_pseudonym``, ``export_mapping``) and ``import_mapping`` need the key; the
gateway's own allocation (``ensure_subject``) works without it.

Every lookup and export is audited in the transaction that reads the identities, whoever calls
it (the command line today, a review console later): no identity leaves without its audit row.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gateway.audit import events as audit
from gateway.deid.config import DeidConfig, MappingConfig, PseudonymConfig
from gateway.deid.hashes import hash_pseudonym, patient_key
from gateway.deid.tables import DeidSubject
from gateway.keys import KeyFileError, read_private

if TYPE_CHECKING:
    from gateway.db import Database

MAX_ATTEMPTS = 20


class MappingKeyError(Exception):
    """The mapping key is missing or wrong; the message never contains the key."""


@dataclass(frozen=True)
class MappingRecord:
    pseudonym: str
    patient_id: str | None  # None when the identity was stored without a key
    patient_name: str | None
    source: str
    created_at: datetime | None = None


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # (line number, reason) for rows that were not imported; reasons never quote values.
    rejected: list[tuple[int, str]] = field(default_factory=list)


def generate_key() -> str:
    """A new mapping key, to be written to ``deid.mapping.key_file`` (mode 0600)."""
    return Fernet.generate_key().decode("ascii")


def load_cipher(settings: MappingConfig, required: bool = True) -> Fernet | None:
    """The Fernet cipher from key_file or the key_env variable; None (or an error) if neither."""
    raw: str | None = None
    if settings.key_file is not None:
        if not Path(settings.key_file).exists():
            raise MappingKeyError(f"cannot read deid.mapping.key_file: {settings.key_file} does not exist")
        raw = read_private(Path(settings.key_file), "deid.mapping.key_file").decode("ascii", "replace")
    elif os.environ.get(settings.key_env):
        raw = os.environ[settings.key_env].strip()
    if not raw:
        if required:
            raise MappingKeyError(f"no mapping key: set deid.mapping.key_file or {settings.key_env}")
        return None
    try:
        return Fernet(raw.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise MappingKeyError("the mapping key is not a valid Fernet key") from None


def _encrypt(cipher: Fernet | None, patient_id: str, patient_name: str) -> bytes | None:
    if cipher is None:
        return None
    return cipher.encrypt(json.dumps({"patient_id": patient_id, "patient_name": patient_name}).encode("utf-8"))


def _decrypt(cipher: Fernet, token: bytes | None) -> tuple[str | None, str | None]:
    if token is None:
        return None, None
    try:
        data = json.loads(cipher.decrypt(token))
    except InvalidToken:
        raise MappingKeyError("the mapping key does not decrypt this mapping") from None
    return data.get("patient_id"), data.get("patient_name")


def ensure_subject(database: Database, settings: PseudonymConfig, secret: bytes, key: str,
                   patient_id: str, patient_name: str, cipher: Fernet | None) -> str:
    """The pseudonym of the patient whose lookup key is ``key``, allocating one if new.

    Safe with several workers: the unique constraints on (project, patient_key) and
    (project, seq) make a second concurrent allocation fail, and the loser retries and reads
    the winner's row. Imported (pre-assigned) rows are found first, so they take precedence.
    """
    project = settings.project
    for _ in range(MAX_ATTEMPTS):
        try:
            with database.session() as session:
                row = session.execute(
                    select(DeidSubject).where(DeidSubject.project == project, DeidSubject.patient_key == key)
                ).scalar_one_or_none()
                if row is not None:
                    if row.identity is None and cipher is not None:
                        row.identity = _encrypt(cipher, patient_id, patient_name)
                    return row.pseudonym
                if settings.method == "hash":
                    seq, pseudonym = None, hash_pseudonym(settings, secret, patient_id)
                else:
                    top = session.execute(
                        select(func.max(DeidSubject.seq)).where(DeidSubject.project == project)
                    ).scalar()
                    seq = (top or 0) + 1
                    pseudonym = settings.sequential_pattern.format(project=project, seq=seq)
                    while session.execute(
                        select(DeidSubject.id).where(DeidSubject.project == project, DeidSubject.pseudonym == pseudonym)
                    ).first():
                        seq += 1  # an imported subject ID already uses this number
                        pseudonym = settings.sequential_pattern.format(project=project, seq=seq)
                session.add(
                    DeidSubject(
                        project=project,
                        patient_key=key,
                        pseudonym=pseudonym[:64],
                        seq=seq,
                        source=settings.method,
                        identity=_encrypt(cipher, patient_id, patient_name),
                    )
                )
                return pseudonym[:64]
        except IntegrityError:
            continue  # another worker allocated concurrently: read its row on the next attempt
    raise RuntimeError("could not allocate a pseudonym after repeated conflicts")


def _csv_rows(source: Path | str | Iterable[str]) -> list[list[str]]:
    if isinstance(source, Path):
        lines: Iterable[str] = io.StringIO(source.read_text(encoding="utf-8-sig"))
    elif isinstance(source, str):
        lines = io.StringIO(source)
    else:
        lines = source
    return [row for row in csv.reader(lines)]


def import_mapping(deid: DeidConfig, database: Database, source: Path | str | Iterable[str],
                   secret: bytes, cipher: Fernet | None = None) -> ImportResult:
    """Import a coordinator's CSV of ``original PatientID,subject ID`` (header row optional).

    ``source`` is a Path to the file, the CSV text itself (str) or an iterable of lines.

    Imported subject IDs take precedence over pseudonyms the gateway allocated itself; a
    subject ID already used by another patient is rejected, not reassigned.
    """
    cipher = cipher or load_cipher(deid.mapping, required=True)
    project = deid.pseudonyms.project
    result = ImportResult()
    rows = _csv_rows(source)
    with database.session() as session:
        for number, row in enumerate(rows, start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells):
                continue
            if number == 1 and cells[0].lower().replace(" ", "_") in {"patient_id", "patientid", "original", "original_patient_id"}:
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                result.rejected.append((number, "expected two non-empty columns"))
                continue
            patient_id, subject = cells[0], cells[1]
            if len(subject) > 64 or "^" in subject or "\\" in subject:
                result.rejected.append((number, "subject ID too long or contains ^ or \\"))
                continue
            key = patient_key(secret, patient_id)
            taken = session.execute(
                select(DeidSubject).where(DeidSubject.project == project, DeidSubject.pseudonym == subject)
            ).scalar_one_or_none()
            if taken is not None and taken.patient_key != key:
                result.rejected.append((number, "subject ID already assigned to another patient"))
                continue
            row_obj = session.execute(
                select(DeidSubject).where(DeidSubject.project == project, DeidSubject.patient_key == key)
            ).scalar_one_or_none()
            if row_obj is None:
                session.add(DeidSubject(project=project, patient_key=key, pseudonym=subject, seq=None,
                                        source="import", identity=_encrypt(cipher, patient_id, "")))
                result.added += 1
            elif row_obj.pseudonym == subject and row_obj.source == "import":
                result.unchanged += 1
            else:
                name = _decrypt(cipher, row_obj.identity)[1] if row_obj.identity else ""
                # The old sequence number stays with the row, so it is never handed out again.
                row_obj.pseudonym, row_obj.source = subject, "import"
                row_obj.identity = _encrypt(cipher, patient_id, name or "")
                result.updated += 1
            session.flush()
    return result


def lookup_pseudonym(deid: DeidConfig, database: Database, pseudonym: str,
                     cipher: Fernet | None = None, actor: str = "library") -> MappingRecord | None:
    """The original identity behind ``pseudonym``; None if unknown. Needs the mapping key.
    Audited as ``actor`` (the pseudonym and whether it was found, never the identity)."""
    with _refusals_audited(database, actor, "lookup"):
        cipher = cipher or load_cipher(deid.mapping, required=True)
        with database.session() as session:
            row = session.execute(
                select(DeidSubject).where(
                    DeidSubject.project == deid.pseudonyms.project, DeidSubject.pseudonym == pseudonym.strip()
                )
            ).scalar_one_or_none()
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action="lookup",
                         pseudonym=pseudonym.strip(), found=row is not None)
            if row is None:
                return None
            patient_id, patient_name = _decrypt(cipher, row.identity)
            return MappingRecord(row.pseudonym, patient_id, patient_name, row.source, row.created_at)


def export_mapping(deid: DeidConfig, database: Database, cipher: Fernet | None = None,
                   actor: str = "library") -> list[MappingRecord]:
    """Every pseudonym of the project with its decrypted identity. Needs the mapping key.
    Audited as ``actor`` with the number of rows."""
    with _refusals_audited(database, actor, "export"):
        cipher = cipher or load_cipher(deid.mapping, required=True)
        with database.session() as session:
            rows = session.execute(
                select(DeidSubject).where(DeidSubject.project == deid.pseudonyms.project)
                .order_by(DeidSubject.id)
            ).scalars().all()
            records = [MappingRecord(r.pseudonym, *_decrypt(cipher, r.identity), r.source, r.created_at)
                       for r in rows]
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action="export", rows=len(records))
            return records


def rotate_key(deid: DeidConfig, database: Database, new_key: str, cipher: Fernet | None = None,
               actor: str = "library") -> int:
    """Re-encrypt every stored identity of the project under ``new_key``, in one transaction;
    returns the number of rows. Workers must be stopped meanwhile: one still holding the old
    key would store new identities under it. Audited, as a refusal too."""
    with _refusals_audited(database, actor, "rotate-key"):
        old = cipher or load_cipher(deid.mapping, required=True)
        try:
            both = MultiFernet([Fernet(new_key.strip().encode("ascii")), old])
        except (ValueError, UnicodeEncodeError):
            raise MappingKeyError("the new mapping key is not a valid Fernet key") from None
        with database.session() as session:
            rows = session.scalars(select(DeidSubject).where(
                DeidSubject.project == deid.pseudonyms.project, DeidSubject.identity.is_not(None))).all()
            for row in rows:
                try:
                    row.identity = both.rotate(row.identity)
                except InvalidToken:
                    raise MappingKeyError("the mapping key does not decrypt this mapping") from None
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action="rotate-key", rows=len(rows))
        return len(rows)


@contextmanager
def _refusals_audited(database: Database, actor: str, action: str) -> Iterator[None]:
    """A re-identification refused for want of a usable key is audited too: the attempt is what
    a reviewer wants to see. The read's own transaction is rolled back, so this one is separate."""
    try:
        yield
    except (MappingKeyError, KeyFileError):
        with database.session() as session:
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action=action,
                         refused="no valid mapping key")
        raise


def write_mapping_csv(records: Iterable[MappingRecord], path: str | Path) -> int:
    """Write an export as CSV readable by its owner only (0600); returns the number of rows."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    count = 0
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pseudonym", "patient_id", "patient_name", "source", "created_at"])
        for r in records:
            writer.writerow([r.pseudonym, r.patient_id or "", r.patient_name or "", r.source,
                             r.created_at.isoformat() if r.created_at else ""])
            count += 1
    return count
