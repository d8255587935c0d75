"""What an operator does about what went wrong: retry, release, discard, re-push, reprocess.

The web console and the command line call the same functions, inside the caller's
transaction, so an action and its audit event commit together or not at all. Every action is
audited with its actor (a console user, or ``cli:<account>``) and counts and identifiers only.
Refusals are :class:`ActionRefused` with a message from a fixed vocabulary.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.egress.deliveries import schedule_deliveries
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Instance,
    InstanceState,
    Job,
    JobState,
    Output,
    QuarantineEntry,
    Study,
    StudyState,
    utcnow,
)

RELEASED = "released"  # a quarantined instance goes back to the queue
DISCARDED = "quarantine_discarded"  # a quarantined file deleted for good
ORIGINAL_READ = "original_read"  # an admin took a quarantined original for forensic review
REPUSHED = "repushed"  # a study's outputs queued again for one destination
REPROCESSED = "reprocessed"  # a study's originals queued again for the workers

#: States a study can be in and still take new work without disturbing a job in hand.
_AT_REST = (StudyState.DONE, StudyState.FAILED, StudyState.FORWARDING)


class ActionRefused(Exception):
    """The action cannot be done; the message says why, in words of our own."""


def retry_study(session: Session, study: Study, actor: str = "operator") -> tuple[int, int]:
    """Failed deliveries and failed jobs of the study start over; returns their counts."""
    deliveries = session.execute(
        update(Delivery)
        .where(Delivery.study_id == study.id, Delivery.state == DeliveryState.FAILED)
        .values(state=DeliveryState.PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None)
    ).rowcount
    jobs = session.execute(
        update(Job)
        .where(Job.study_id == study.id, Job.state == JobState.FAILED)
        .values(state=JobState.PENDING, attempts=0, error=None, finished_at=None)
    ).rowcount
    if jobs:
        study.state = StudyState.READY
    elif deliveries:
        study.state = StudyState.FORWARDING
    audit.record(session, audit.RETRY, study=study, actor=actor, deliveries=deliveries, jobs=jobs)
    return deliveries, jobs


def quarantine_entry(session: Session, entry_id: int) -> QuarantineEntry:
    entry = session.get(QuarantineEntry, entry_id)
    if entry is None:
        raise ActionRefused("no such quarantine entry")
    return entry


def _requeue(session: Session, instance: Instance) -> None:
    """The instance waits for the scheduler again, as if it had just been received (but
    without touching its study's quiet time: a released instance need not wait)."""
    instance.state = InstanceState.RECEIVED
    instance.job_id = None
    instance.error = None
    session.execute(delete(QuarantineEntry).where(QuarantineEntry.instance_id == instance.id))
    study = session.get(Study, instance.study_id)
    if study.state in _AT_REST:
        study.state = StudyState.RECEIVING


def release(session: Session, entry_id: int, actor: str) -> Study:
    """Process a quarantined instance again, under the configuration the workers run now."""
    entry = quarantine_entry(session, entry_id)
    instance = session.get(Instance, entry.instance_id) if entry.instance_id else None
    if instance is None:
        raise ActionRefused("refused at ingest: not a readable instance, so there is nothing to "
                            "process again; the sender must send it again")
    if instance.state != InstanceState.QUARANTINED:
        raise ActionRefused("the instance is no longer quarantined")
    if not instance.spool_path or not Path(instance.spool_path).exists():
        raise ActionRefused("the original is no longer in the spool")
    study = session.get(Study, instance.study_id)
    audit.record(session, RELEASED, study=study, actor=actor, entry=entry.id, stage=entry.stage,
                 reason=entry.reason, instance_id=instance.id)
    _requeue(session, instance)
    return study


def discard(session: Session, entry_id: int, actor: str) -> Study | None:
    """Delete a quarantined file for good, and its entry. The instance row stays (quarantined,
    without a file), so its counts stay right; the sender can still send it again."""
    entry = quarantine_entry(session, entry_id)
    instance = session.get(Instance, entry.instance_id) if entry.instance_id else None
    if instance is not None and instance.state != InstanceState.QUARANTINED:
        raise ActionRefused("the instance is no longer quarantined")
    study = session.get(Study, entry.study_id) if entry.study_id else None
    path = instance.spool_path if instance is not None else entry.path
    if path:
        Path(path).unlink(missing_ok=True)
    if instance is not None:
        instance.spool_path = None
        session.execute(delete(QuarantineEntry).where(QuarantineEntry.instance_id == instance.id))
    else:
        session.delete(entry)
    audit.record(session, DISCARDED, study=study, actor=actor, entry=entry_id, stage=entry.stage,
                 reason=entry.reason)
    return study


def original_for_review(session: Session, entry_id: int, actor: str) -> Path:
    """The quarantined original's file, for an admin's forensic review; audited before it is
    handed out. It holds patient data: the caller writes it only where the admin asked."""
    entry = quarantine_entry(session, entry_id)
    instance = session.get(Instance, entry.instance_id) if entry.instance_id else None
    path = instance.spool_path if instance is not None else entry.path
    if not path or not Path(path).is_file():
        raise ActionRefused("the original is no longer kept")
    study = session.get(Study, entry.study_id) if entry.study_id else None
    audit.record(session, ORIGINAL_READ, study=study, actor=actor, entry=entry.id, stage=entry.stage)
    return Path(path)


def repush(session: Session, study: Study, destination: str, profile: str, actor: str) -> tuple[int, int]:
    """Queue every output of the study for ``destination`` again (a destination added later
    is backfilled the same way), from the outbox; returns (queued, missing). Missing outputs
    (purged after retention, or of another profile) need :func:`reprocess` while the spool
    still holds the originals."""
    rows = session.execute(
        select(Instance, Output)
        .outerjoin(Output, (Output.instance_id == Instance.id) & (Output.profile == profile))
        .where(Instance.study_id == study.id,
               Instance.state.in_([InstanceState.PROCESSED, InstanceState.DELIVERED]))
    ).all()
    queued = missing = 0
    for _instance, output in rows:
        if output is None or not Path(output.path).exists():
            missing += 1
            continue
        schedule_deliveries(session, output.id, study.id, [destination])
        queued += 1
    if not queued:
        raise ActionRefused("nothing of this study is left in the outbox to send")
    if study.state in _AT_REST:
        study.state = StudyState.FORWARDING
    audit.record(session, REPUSHED, study=study, actor=actor, destination=destination,
                 instances=queued, missing=missing)
    return queued, missing


def reprocess(session: Session, study: Study, actor: str) -> int:
    """De-identify the study again from the spool under the current configuration (its
    outputs then go to every destination of their profile again); returns the instances
    queued. Instances whose originals were purged are left as they are."""
    done = (InstanceState.PROCESSED, InstanceState.QUARANTINED, InstanceState.FAILED)
    instances = session.scalars(
        select(Instance).where(Instance.study_id == study.id, Instance.state.in_(done))
    ).all()
    kept = [i for i in instances if i.spool_path and Path(i.spool_path).exists()]
    if not kept:
        raise ActionRefused("no original of this study is left in the spool")
    for instance in kept:
        _requeue(session, instance)
    audit.record(session, REPROCESSED, study=study, actor=actor, instances=len(kept),
                 purged=len(instances) - len(kept))
    return len(kept)
