"""Recording a received instance: the last step before the sender hears "success"."""

from __future__ import annotations

import enum
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import keys
from gateway.ingest.validate import InstanceHeader
from gateway.queue.tables import Instance, InstanceState, Study, StudyState, utcnow

log = logging.getLogger("gateway.queue")


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


@dataclass(frozen=True)
class Arrival:
    """A received instance, whole and durable at ``spool_path``, waiting for its row."""

    header: InstanceHeader
    spool_path: Path
    sha256: str
    size: int
    calling_ae: str
    calling_address: str | None = None


@dataclass(frozen=True)
class Recorded:
    """What :func:`register_arrival` did: the outcome, the study, the file the instance's row now
    names (``kept_at``: the arrival's own path, or for a duplicate the copy kept earlier), and the
    files no longer referenced, to delete once the transaction is committed."""

    outcome: Intake
    study_id: int
    kept_at: str | None
    superseded: list[str]


def register_arrival(session: Session, secret: bytes, arrival: Arrival) -> Recorded:
    """:func:`register_instance` in a savepoint of its own, so that many arrivals can share one
    transaction (one commit, one fsync: see :mod:`gateway.ingest.commit`) and one whose rows
    cannot be written rolls back alone, leaving the others to be committed."""
    with session.begin_nested():
        outcome, study, superseded = register_instance(
            session, secret, arrival.header, arrival.spool_path, arrival.sha256, arrival.size,
            arrival.calling_ae, arrival.calling_address,
        )
        kept_at = str(arrival.spool_path)
        if outcome is Intake.DUPLICATE:
            ikey = instance_key(secret, arrival.header.sop_instance_uid)
            kept_at = session.scalar(select(Instance.spool_path).where(Instance.sop_key == ikey))
        return Recorded(outcome, study.id, kept_at, superseded)


def register_arrivals(session: Session, secret: bytes, arrivals: list[Arrival]) -> list[Recorded | Exception]:
    """Record many arrivals in the caller's transaction, each as :func:`register_arrival` would;
    an arrival whose rows cannot be written gets its exception in place of its record.

    Instances the gateway does not hold yet (nearly all of them) are inserted together, in a few
    plain statements whatever their number; any other (a re-send, a new version, the same
    instance twice in the list) goes through :func:`register_arrival`, as do all of them when
    the insert fails (on PostgreSQL another node may have inserted one of them meanwhile).
    """
    ikeys = [instance_key(secret, arrival.header.sop_instance_uid) for arrival in arrivals]
    connection = session.connection()  # the session's transaction, without the ORM's bookkeeping
    held = set(connection.scalars(_HELD, {"keys": list(set(ikeys))}))
    counts = Counter(ikeys)
    fresh = [n for n, ikey in enumerate(ikeys) if ikey not in held and counts[ikey] == 1]
    results: list[Recorded | Exception | None] = [None] * len(arrivals)
    if fresh:
        try:
            with session.begin_nested():
                inserted = _insert_new(session, connection, secret, [arrivals[n] for n in fresh],
                                       [ikeys[n] for n in fresh])
            for n, recorded in zip(fresh, inserted):
                results[n] = recorded
        except Exception as exc:  # rolled back to the savepoint: one at a time below
            log.debug("inserting %d new instances together failed (%s)", len(fresh), type(exc).__name__)
    for n, arrival in enumerate(arrivals):
        if results[n] is None:
            try:
                results[n] = register_arrival(session, secret, arrival)
            except Exception as exc:  # its own savepoint is rolled back; the others stand
                results[n] = exc
    return results


# The statements of the batch path, built once: building them costs more than running them.
_HELD = select(Instance.sop_key).where(Instance.sop_key.in_(bindparam("keys", expanding=True)))
_STUDY_IDS = select(Study.study_key, Study.id).where(Study.study_key.in_(bindparam("keys", expanding=True)))
_TOUCH_STUDIES = (
    update(Study).where(Study.id.in_(bindparam("ids", expanding=True)))
    .values(last_received_at=bindparam("now"),
            state=case((Study.state.in_([StudyState.DONE, StudyState.FAILED]), StudyState.RECEIVING),
                       else_=Study.state))
)
_INSERT_INSTANCES = insert(Instance)


def _insert_new(session: Session, connection, secret: bytes, arrivals: list[Arrival],
                ikeys: list[str]) -> list[Recorded]:
    """Insert rows for instances known to be new, and mark their studies as receiving now (a
    study seen for the first time is made as :func:`register_instance` makes it)."""
    now = utcnow()
    skeys = [study_key(secret, arrival.header.study_instance_uid) for arrival in arrivals]
    study_ids = dict(connection.execute(_STUDY_IDS, {"keys": list(set(skeys))}).all())
    for skey, arrival in zip(skeys, arrivals):
        if skey not in study_ids:
            study, _ = _row(session, Study, Study.study_key == skey,
                            lambda: Study(study_key=skey, calling_ae=arrival.calling_ae, state=StudyState.RECEIVING))
            study_ids[skey] = study.id
    connection.execute(_TOUCH_STUDIES, {"ids": list(set(study_ids.values())), "now": now})
    connection.execute(_INSERT_INSTANCES, [
        {"study_id": study_ids[skey], "sop_key": ikey, "calling_ae": a.calling_ae,
         "calling_address": a.calling_address, "sop_class_uid": a.header.sop_class_uid,
         "transfer_syntax_uid": a.header.transfer_syntax_uid, "spool_path": str(a.spool_path),
         "sha256": a.sha256, "size": a.size, "state": InstanceState.RECEIVED, "received_at": now}
        for a, ikey, skey in zip(arrivals, ikeys, skeys)
    ])
    return [Recorded(Intake.NEW, study_ids[skey], str(a.spool_path), []) for a, skey in zip(arrivals, skeys)]


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
