"""Writing audit events.

Events carry counts, statuses, anonymized identifiers and coordinates, never values read from
a dataset. Callers pass the study row so that the event shows the de-identified UID.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway.audit.tables import AuditEvent
from gateway.queue.tables import Study

log = logging.getLogger("gateway.audit")

RECEIVED = "received"
REFUSED = "refused"
REJECTED_ASSOCIATION = "association_rejected"
STABLE = "stable"
PIXELS_CLEANED = "pixels_cleaned"  # a pixel worker handed a job on to header workers
PROCESSED = "processed"
QUARANTINED = "quarantined"
FORWARDED = "forwarded"
DELIVERY_RETRY = "delivery_retry"
FAILED = "failed"
RETRY = "retry"
LEASE_EXPIRED = "lease_expired"
PURGED = "purged"
MAPPING_ACCESS = "mapping_access"
LEFTOVERS_REMOVED = "leftovers_removed"  # half-written files of a process that died mid-write
TLS_FAILURE = "tls_handshake_failed"  # a peer's certificate or TLS handshake was not accepted
DROPPED = "dropped"  # a routing rule (named in the event) kept an instance from leaving
PULL_ITEM = "pull_item"  # one requested item of a pull, with its outcome
PROCESS_ENDED = "process_ended"  # a process of serve ended untold (a crash, the OOM killer); started again


def process_actor(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def record(
    session: Session,
    event: str,
    *,
    study: Study | None = None,
    actor: str | None = None,
    **detail: Any,
) -> AuditEvent:
    row = AuditEvent(**columns(event, study=study, actor=actor, **detail))
    session.add(row)
    return row


def record_alone(db, event: str, *, actor: str, **detail: Any) -> None:
    """Record ``event`` in a transaction of its own, as a part does that must go on whether or
    not the database answers (a refusal stands, a crashed process is started again): a database
    that is away is said in the log, by the error's type only."""
    try:
        with db.session() as session:
            record(session, event, actor=actor, **detail)
    except Exception as exc:  # noqa: BLE001 - what the caller did stands either way
        log.error("cannot audit %s: %s", event, type(exc).__name__)


def columns(event: str, *, study: Study | None = None, actor: str | None = None, **detail: Any) -> dict:
    """An event's columns, for :func:`record_all`; logged as :func:`record` logs it."""
    label = study.label if study is not None else None
    log.info("audit %s study=%s %s", event, label or "-", detail or "")
    return {"event": event, "study_id": study.id if study is not None else None, "study": label,
            "actor": actor, "detail": detail}


def record_all(session: Session, events: list[dict]) -> None:
    """Several events (from :func:`columns`) in one statement: as objects, each took an INSERT
    of its own (SQLite returns each new id), and the worker records one per instance."""
    if events:
        session.execute(insert(AuditEvent), events)
