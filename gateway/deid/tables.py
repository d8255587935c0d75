"""Tables of the header de-identification room (pseudonym mapping).

One row per patient and project. ``patient_key`` is an HMAC of the original PatientID under the
gateway secret: it lets any worker find a patient's pseudonym without the original identity
ever being stored in clear. ``identity`` holds the original PatientID and PatientName encrypted
with the mapping key (Fernet); it is NULL when no key was configured, and then the row can
still be found (consistency) but not read back (no re-identification).
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
