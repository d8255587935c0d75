"""Recording a received instance: the last step before the sender hears "success"."""

from __future__ import annotations

import enum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import keys
from gateway.ingest.validate import InstanceHeader
from gateway.queue.tables import Instance, InstanceState, Study, StudyState, utcnow


class Intake(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # same instance, same bytes: already safe, nothing to do
    # Same instance, new bytes (or the same bytes of one quarantined or failed): processed anew.
    REPLACED = "replaced"


def study_key(secret: bytes, study_uid: str) -> str:
    return keys.keyed_digest(secret, keys.STUDY, study_uid)


def instance_key(secret: bytes, sop_instance_uid: str) -> str:
    return keys.keyed_digest(secret, keys.INSTANCE, sop_instance_uid)


def register_instance(
    session: Session,
    secret: bytes,
    header: InstanceHeader,
    spool_path: Path,
    sha256: str,
    size: int,
    calling_ae: str,
    calling_address: str | None = None,
) -> tuple[Intake, Study, list[str]]:
    """Insert or update the study and instance rows.

    Returns the outcome, the study, and the files no longer referenced (the superseded
    version's spool file and intermediate), which the caller deletes after commit.
    Safe when two associations bring the same new study (or instance) at once: see :func:`_row`.
    The instance row keeps who sent this version (``calling_ae``, ``calling_address``), which
    the routing rules match on.
    """
    now = utcnow()
    skey = study_key(secret, header.study_instance_uid)
    study, _ = _row(session, Study, Study.study_key == skey,
                    lambda: Study(study_key=skey, calling_ae=calling_ae, state=StudyState.RECEIVING))
    ikey = instance_key(secret, header.sop_instance_uid)
    instance = session.scalars(select(Instance).where(Instance.sop_key == ikey)).one_or_none()
    if instance is not None and _already_handled(instance, sha256):
        return Intake.DUPLICATE, study, []

    study.last_received_at = now
    if study.state in (StudyState.DONE, StudyState.FAILED):
        study.state = StudyState.RECEIVING

    if instance is None:
        instance, made = _row(session, Instance, Instance.sop_key == ikey,
                              lambda: _received(Instance(study_id=study.id, sop_key=ikey, calling_ae=calling_ae,
                                                         calling_address=calling_address),
                                                header, spool_path, sha256, size, now))
        if made:
            return Intake.NEW, study, []
        if _already_handled(instance, sha256):
            return Intake.DUPLICATE, study, []  # the other association's copy is this one

    superseded = [path for path in (instance.spool_path, instance.intermediate_path)
                  if path and path != str(spool_path)]
    instance.study_id = study.id
    instance.calling_ae, instance.calling_address = calling_ae, calling_address
    _received(instance, header, spool_path, sha256, size, now)
    instance.job_id = None
    instance.error = None
    instance.intermediate_path = None
    instance.intermediate_context = None
    return Intake.REPLACED, study, superseded


#: States from which a re-sent copy with the same bytes is processed again: nothing came out of
#: the first copy, and the sender (or an operator who fixed the configuration) is asking again.
REPROCESS_ON_RESEND = (InstanceState.FAILED, InstanceState.QUARANTINED)


def _already_handled(instance: Instance, sha256: str) -> bool:
    """Whether a copy with ``sha256`` is one the gateway already holds and acts on: the same
    bytes, and not given up on (quarantined or failed)."""
    return instance.sha256 == sha256 and instance.state not in REPROCESS_ON_RESEND


def _row(session: Session, table, where, make):
    """The row of ``table`` matching ``where`` (a unique key), inserted from ``make()`` if there
    is none; returns it and whether it was made here.

    On PostgreSQL two transactions can both find no row and both insert; the second insert waits
    for the first to commit and then breaks the unique constraint. The insert runs in a
    savepoint, so that loser only rolls back the savepoint and reads the winner's row. (SQLite's
    BEGIN IMMEDIATE serialises intakes, so there the race cannot happen.)
    """
    row = session.scalars(select(table).where(where)).one_or_none()
    if row is not None:
        return row, False
    try:
        with session.begin_nested():
            row = make()
            session.add(row)
            session.flush()
        return row, True
    except IntegrityError:
        return session.scalars(select(table).where(where)).one(), False


def _received(instance: Instance, header: InstanceHeader, spool_path: Path, sha256: str, size: int,
              now) -> Instance:
    """What an instance row holds of the version just received."""
    instance.sop_class_uid = header.sop_class_uid
    instance.transfer_syntax_uid = header.transfer_syntax_uid
    instance.spool_path = str(spool_path)
    instance.sha256 = sha256
    instance.size = size
    instance.state = InstanceState.RECEIVED
    instance.received_at = now
    return instance
