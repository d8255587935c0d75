"""Coordinator links: original <-> de-identified Study UID and accession number.

Coordinators link research data back to clinical records through the de-identified Study UID
and the pseudonymized accession number. Both are one-way hashes, so the gateway keeps the link
as the patient table does: found by keyed hash of the original (``study_key``,
``accession_key``), the originals encrypted with the mapping key and never in clear. The
gateway records a study's link as its header stage de-identifies it (:func:`record_study`); a
coordinator's own research accession numbers come in by CSV (:func:`import_csv`) and win over
the keyed hash. Reading originals needs the mapping key and is audited in the same
transaction, like the patient table's lookups and exports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from pydicom import Dataset
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from gateway import keys
from gateway.audit import events as audit
from gateway.deid.config import DeidConfig
from gateway.deid.mapping import (
    ImportResult,
    MappingKeyError,
    _refusals_audited,
    import_mapping,
    load_cipher,
)
from gateway.deid.tables import DeidAccession, DeidStudy, DeidSubject

if TYPE_CHECKING:
    from gateway.db import Database

#: Header names (lower case, spaces as underscores) of a coordinator's CSV columns.
PATIENT_COLUMNS = ("patient_id", "patientid", "original_patient_id")
SUBJECT_COLUMNS = ("subject", "subject_id", "pseudonym")
ACCESSION_COLUMNS = ("accession_number", "accession", "original_accession")
RESEARCH_COLUMNS = ("research_accession", "pseudonymized_accession", "anon_accession")


@dataclass(frozen=True)
class StudyRecord:
    subject: str | None
    patient_id: str | None
    anon_uid: str | None
    study_uid: str | None
    anon_accession: str | None
    accession_number: str | None
    profile: str
    created_at: datetime | None


def accession_key(secret: bytes, value: str) -> str:
    """The lookup key of an original accession number (keyed hash, hex)."""
    return keys.keyed_digest(secret, keys.ACCESSION_KEY, value.strip())


def study_key(secret: bytes, study_uid: str) -> str:
    """The lookup key of an original Study UID: the queue's ``studies.study_key``."""
    return keys.keyed_digest(secret, keys.STUDY, study_uid)


def _seal(cipher: Fernet | None, values: dict) -> bytes | None:
    return None if cipher is None else cipher.encrypt(json.dumps(values).encode("utf-8"))


def _open(cipher: Fernet, token: bytes | None) -> dict:
    if token is None:
        return {}
    try:
        return json.loads(cipher.decrypt(token))
    except InvalidToken:
        raise MappingKeyError("the mapping key does not decrypt this mapping") from None


# -- what the gateway records ------------------------------------------------------------------
def imported_accession(database: Database, project: str, key: str) -> str | None:
    """The coordinator's research accession number for the original whose key is ``key``."""
    with database.session() as session:
        return session.scalars(select(DeidAccession.pseudonym).where(
            DeidAccession.project == project, DeidAccession.accession_key == key)).first()


def record_study(database: Database, project: str, secret: bytes, cipher: Fernet | None, profile: str,
                 original: Dataset, output: Dataset) -> None:
    """Keep the link between ``original`` and its de-identified ``output`` for ``profile``, once
    per study (a second worker's concurrent insert loses quietly); an identity stored without
    a key is filled in once a key is configured."""
    uid = str(original.get("StudyInstanceUID", "") or "").strip()
    if not uid:
        return
    values = {"study_uid": uid, "accession_number": str(original.get("AccessionNumber", "") or "").strip()}
    key = study_key(secret, uid)
    try:
        with database.session() as session:
            row = session.scalars(select(DeidStudy).where(
                DeidStudy.project == project, DeidStudy.study_key == key, DeidStudy.profile == profile)).first()
            if row is not None:
                if row.identity is None and cipher is not None:
                    row.identity = _seal(cipher, values)
                return
            session.add(DeidStudy(
                project=project, study_key=key, profile=profile,
                anon_uid=_changed(original, output, "StudyInstanceUID", 64),
                anon_accession=_changed(original, output, "AccessionNumber", 16),
                subject=_changed(original, output, "PatientID", 64),
                identity=_seal(cipher, values)))
    except IntegrityError:
        return  # another worker recorded it first


def _changed(original: Dataset, output: Dataset, keyword: str, length: int) -> str | None:
    """``output``'s value of ``keyword`` if de-identification changed it; None where a profile
    kept the original (an original is never stored in clear)."""
    value = str(output.get(keyword, "") or "").strip()
    return value[:length] if value and value != str(original.get(keyword, "") or "").strip() else None


# -- a coordinator's CSV -------------------------------------------------------------------
def import_csv(deid: DeidConfig, database: Database, source: Path, secret: bytes,
               cipher: Fernet | None = None) -> ImportResult:
    """A coordinator's CSV. With a header naming accession columns (``accession_number`` and
    ``research_accession``), those pairs are imported, and ``patient_id``/``subject`` pairs
    too when present; otherwise the file is the two-column ``PatientID,subject ID`` list."""
    cipher = cipher or load_cipher(deid.mapping, required=True)
    rows = list(csv.reader(io.StringIO(Path(source).read_text(encoding="utf-8-sig"))))
    header = [cell.strip().lower().replace(" ", "_") for cell in rows[0]] if rows else []
    accession, research = _column(header, ACCESSION_COLUMNS), _column(header, RESEARCH_COLUMNS)
    if accession is None or research is None:
        return import_mapping(deid, database, Path(source), secret, cipher)
    pairs = [(number, _cell(row, accession), _cell(row, research)) for number, row in enumerate(rows[1:], start=2)]
    result = import_accessions(deid, database, pairs, secret, cipher)
    patient, subject = _column(header, PATIENT_COLUMNS), _column(header, SUBJECT_COLUMNS)
    if patient is not None and subject is not None:
        lines = ["patient_id,subject"] + [_csv_line(_cell(row, patient), _cell(row, subject)) for row in rows[1:]]
        subjects = import_mapping(deid, database, lines, secret, cipher)
        result.added += subjects.added
        result.updated += subjects.updated
        result.unchanged += subjects.unchanged
        result.rejected = sorted(result.rejected + subjects.rejected)
    return result


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((i for i, name in enumerate(header) if name in names), None)


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _csv_line(*cells: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().rstrip("\r\n")


def import_accessions(deid: DeidConfig, database: Database, pairs: Iterable[tuple[int, str, str]],
                      secret: bytes, cipher: Fernet) -> ImportResult:
    """(line, original accession, research accession) rows; a research accession number already
    given to another original is rejected, never reassigned. Reasons never quote values."""
    project, result = deid.pseudonyms.project, ImportResult()
    with database.session() as session:
        for number, original, research in pairs:
            if not original and not research:
                continue
            if not original or not research:
                result.rejected.append((number, "expected both accession columns"))
                continue
            if len(research) > 16 or "\\" in research:
                result.rejected.append((number, "research accession longer than 16 or contains \\"))
                continue
            key = accession_key(secret, original)
            taken = session.scalars(select(DeidAccession).where(
                DeidAccession.project == project, DeidAccession.pseudonym == research)).first()
            if taken is not None and taken.accession_key != key:
                result.rejected.append((number, "research accession already assigned to another accession"))
                continue
            row = session.scalars(select(DeidAccession).where(
                DeidAccession.project == project, DeidAccession.accession_key == key)).first()
            if row is None:
                session.add(DeidAccession(project=project, accession_key=key, pseudonym=research,
                                          identity=_seal(cipher, {"accession_number": original})))
                result.added += 1
            elif row.pseudonym == research:
                result.unchanged += 1
            else:
                row.pseudonym = research
                result.updated += 1
            session.flush()
    return result


# -- reading the links back (needs the key; audited) -------------------------------------------
def export_studies(deid: DeidConfig, database: Database, cipher: Fernet | None = None,
                   actor: str = "library") -> list[StudyRecord]:
    """Every study link of the project with its originals and its subject's PatientID.
    Audited as ``actor`` with the number of rows."""
    with _refusals_audited(database, actor, "export-studies"):
        cipher = cipher or load_cipher(deid.mapping, required=True)
        with database.session() as session:
            records = [_record(cipher, row, patient) for row, patient in _study_rows(session, deid, None)]
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action="export-studies", rows=len(records))
            return records


def lookup_study(deid: DeidConfig, database: Database, value: str, cipher: Fernet | None = None,
                 actor: str = "library") -> list[StudyRecord]:
    """The study (one row per profile) whose de-identified Study UID or pseudonymized accession
    number is ``value``. Audited as ``actor`` (the value looked up and whether it was found)."""
    value = value.strip()
    with _refusals_audited(database, actor, "lookup-study"):
        cipher = cipher or load_cipher(deid.mapping, required=True)
        with database.session() as session:
            records = [_record(cipher, row, patient) for row, patient in _study_rows(session, deid, value)]
            audit.record(session, audit.MAPPING_ACCESS, actor=actor, action="lookup-study", looked_up=value,
                         found=bool(records))
            return records


def _study_rows(session, deid: DeidConfig, value: str | None):
    query = (select(DeidStudy, DeidSubject.identity)
             .outerjoin(DeidSubject, (DeidSubject.project == DeidStudy.project)
                        & (DeidSubject.pseudonym == DeidStudy.subject))
             .where(DeidStudy.project == deid.pseudonyms.project).order_by(DeidStudy.id))
    if value is not None:
        query = query.where(or_(DeidStudy.anon_uid == value, DeidStudy.anon_accession == value))
    return session.execute(query).all()


def _record(cipher: Fernet, row: DeidStudy, patient_identity: bytes | None) -> StudyRecord:
    original = _open(cipher, row.identity)
    patient = _open(cipher, patient_identity)
    return StudyRecord(row.subject, patient.get("patient_id"), row.anon_uid or original.get("study_uid"),
                       original.get("study_uid"), row.anon_accession, original.get("accession_number"),
                       row.profile, row.created_at)


def write_studies_csv(records: Iterable[StudyRecord], path: str | Path) -> int:
    """Write an export of study links as CSV readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    count = 0
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "patient_id", "deidentified_study_uid", "study_uid", "research_accession",
                         "accession_number", "profile", "created_at"])
        for r in records:
            writer.writerow([r.subject or "", r.patient_id or "", r.anon_uid or "", r.study_uid or "",
                             r.anon_accession or "", r.accession_number or "", r.profile,
                             r.created_at.isoformat() if r.created_at else ""])
            count += 1
    return count
