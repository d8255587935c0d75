"""Tables of the header de-identification room (pseudonym mapping, coordinator links).

One row per patient and project. ``patient_key`` is an HMAC of the original PatientID under the
gateway secret: it lets any worker find a patient's pseudonym without the original identity
ever being stored in clear. ``identity`` holds the original PatientID and PatientName encrypted
with the mapping key (Fernet); it is NULL when no key was configured, and then the row can
still be found (consistency) but not read back (no re-identification).

The coordinator links work the same way: a study is found by the keyed hash of its original
Study Instance UID (the queue's ``study_key``), an imported accession number by the keyed hash
of the original; the originals are only ever stored encrypted with the mapping key.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.schema import Base


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeidSubject(Base):
    __tablename__ = "deid_subject"
    __table_args__ = (
        UniqueConstraint("project", "patient_key", name="uq_deid_subject_key"),
        UniqueConstraint("project", "pseudonym", name="uq_deid_subject_pseudonym"),
        UniqueConstraint("project", "seq", name="uq_deid_subject_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_key: Mapped[str] = mapped_column(String(64), nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(64), nullable=False)
    # Sequential number; NULL for hash and imported pseudonyms.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "sequential", "hash" or "import" (a coordinator's pre-assigned subject ID).
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now, nullable=False)


class DeidAccession(Base):
    """A coordinator's research accession number for an original one (``mapping import``); it
    wins over the keyed hash the gateway would otherwise write."""

    __tablename__ = "deid_accession"
    __table_args__ = (
        UniqueConstraint("project", "accession_key", name="uq_deid_accession_key"),
        UniqueConstraint("project", "pseudonym", name="uq_deid_accession_pseudonym"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), nullable=False)
    # HMAC of the original AccessionNumber under the gateway secret.
    accession_key: Mapped[str] = mapped_column(String(64), nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(16), nullable=False)
    # The original AccessionNumber, encrypted with the mapping key.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now, nullable=False)


class DeidStudy(Base):
    """One study as de-identified for one profile: the link a coordinator follows from the
    research archive back to the clinical record (de-identified Study UID and accession number
    to the originals, and the subject's pseudonym)."""

    __tablename__ = "deid_study"
    __table_args__ = (UniqueConstraint("project", "study_key", "profile", name="uq_deid_study_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), nullable=False)
    # HMAC of the original StudyInstanceUID (the same digest as the queue's studies.study_key).
    study_key: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    profile: Mapped[str] = mapped_column(String(64), nullable=False)
    # The de-identified StudyInstanceUID; NULL where the profile retained the original.
    anon_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    anon_accession: Mapped[str | None] = mapped_column(String(16), index=True)
    # The patient's pseudonym as written to PatientID.
    subject: Mapped[str | None] = mapped_column(String(64))
    # JSON of the original StudyInstanceUID and AccessionNumber, encrypted with the mapping key;
    # NULL when no key was configured.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)
