"""The audit trail: one row per thing that happened, in counts and anonymized identifiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.schema import Base
from gateway.queue.tables import utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    study_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # De-identified study UID (or key prefix) at the time of the event.
    study: Mapped[str | None] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditSeal(Base):
    """An HMAC over the audit rows after the previous seal, through ``last_id``, chained to that
    seal's MAC (:mod:`gateway.audit.seals`)."""

    __tablename__ = "audit_seals"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The seal this one extends (0 for the first); unique, so that two sealers cannot fork the chain.
    follows: Mapped[int] = mapped_column(Integer, unique=True)
    last_id: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))
    # Which secret's key made it (a fingerprint), so that seals from before a rotation of the
    # secret are told apart from broken ones.
    key: Mapped[str] = mapped_column(String(16))
