"""What people read: queue status, the audit trail of a study, the quarantine.

Everything shown is an anonymized identifier, a count, a state or a time.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.audit import seals
from gateway.audit.tables import AuditEvent
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Instance,
    InstanceState,
    Job,
    JobPhase,
    JobState,
    QuarantineEntry,
    Study,
    StudyState,
)


def find_study(session: Session, ref: str) -> Study | None:
    """A study by de-identified UID, by ``key:`` prefix, or by database id."""
    if ref.startswith("key:"):
        return session.scalars(select(Study).where(Study.study_key.startswith(ref[4:]))).first()
    if ref.isdigit():
        by_id = session.get(Study, int(ref))
        if by_id is not None:
            return by_id
    return session.scalars(select(Study).where(Study.anon_uid == ref)).first()


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _sealing(session: Session) -> str:
    done = seals.progress(session)
    when = done.last_seal_at.strftime("%Y-%m-%d %H:%M:%S") if done.last_seal_at else "never"
    return (f"audit trail sealed through row {done.sealed_through} (last seal {when} UTC), "
            f"{done.unsealed} newer rows; check it with 'deid-gateway audit verify'")


def status_lines(session: Session, last: int = 10) -> list[str]:
    studies = dict(session.execute(select(Study.state, func.count()).group_by(Study.state)).all())
    jobs = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    # With split workers, what each role has waiting (rows from before phases count as pixels).
    waiting: Counter = Counter()
    pending = select(Job.phase, func.count()).where(Job.state == JobState.PENDING).group_by(Job.phase)
    for phase, n in session.execute(pending).all():
        waiting[phase or JobPhase.PIXELS] += n
    deliveries = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
    instances = dict(session.execute(select(Instance.state, func.count()).group_by(Instance.state)).all())
    quarantined = session.scalar(select(func.count()).select_from(QuarantineEntry))
    leftovers = sum(int(e.detail.get("files", 0)) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.event == audit.LEFTOVERS_REMOVED)))
    ended = Counter(str(e.detail.get("process", "")) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.event == audit.PROCESS_ENDED)))
    lines = [
        "studies:    " + _counts(studies),
        "instances:  " + _counts(instances),
        "jobs:       " + _counts(jobs),
        "pending by role: " + _counts(waiting),
        "deliveries: " + _counts(deliveries),
        f"quarantine: {quarantined} entr{'y' if quarantined == 1 else 'ies'}",
        f"half-written files removed after crashes: {leftovers}",
        "processes started again after ending untold: " + _counts(ended),
        _sealing(session),
        "",
    ]
    failed = session.scalars(
        select(Study).where(or_(Study.state == StudyState.FAILED,
                                Study.id.in_(select(Job.study_id).where(Job.state == JobState.FAILED))))
    ).all()
    lines.append(f"failed studies ({len(failed)}):")
    lines += [f"  {s.label}  since {_when(s.updated_at)}" for s in failed] or ["  none"]
    lines.append("")
    lines.append("last deliveries:")
    rows = session.execute(
        select(Delivery.destination, Delivery.delivered_at, Study)
        .join(Study, Study.id == Delivery.study_id)
        .where(Delivery.state == DeliveryState.SENT)
        .order_by(Delivery.delivered_at.desc()).limit(last)
    ).all()
    lines += [f"  {_when(at)}  {dest:<16} {study.label}" for dest, at, study in rows] or ["  none"]
    return lines


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


def audit_lines(session: Session, study: Study | None = None, event: str | None = None,
                limit: int = 50) -> list[str]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if study is not None:
        query = query.where(AuditEvent.study_id == study.id)
    if event:
        query = query.where(AuditEvent.event == event)
    rows = list(reversed(session.scalars(query).all()))
    return [
        f"{_when(e.at)}  {e.event:<20} {e.study or '-':<64} {json.dumps(e.detail, sort_keys=True)}"
        for e in rows
    ]


def study_summary(session: Session, study: Study) -> list[str]:
    instances = dict(session.execute(
        select(Instance.state, func.count()).where(Instance.study_id == study.id).group_by(Instance.state)
    ).all())
    deliveries = session.execute(
        select(Delivery.destination, Delivery.state, func.count())
        .where(Delivery.study_id == study.id).group_by(Delivery.destination, Delivery.state)
    ).all()
    lines = [
        f"study:      {study.label}",
        f"state:      {study.state}",
        f"received:   {_when(study.first_received_at)} .. {_when(study.last_received_at)} from {study.calling_ae}",
        "instances:  " + _counts(instances),
    ]
    lines += [f"delivery:   {dest} {state}={n}" for dest, state, n in deliveries]
    return lines


def in_quarantine():
    """The condition on QuarantineEntry of what is in quarantine now: entries refused at ingest,
    and for each instance still quarantined its latest entry (an instance released, re-sent or
    reprocessed is no longer held)."""
    latest = (
        select(func.max(QuarantineEntry.id))
        .join(Instance, Instance.id == QuarantineEntry.instance_id)
        .where(Instance.state == InstanceState.QUARANTINED)
        .group_by(QuarantineEntry.instance_id)
    )
    return or_(QuarantineEntry.instance_id.is_(None), QuarantineEntry.id.in_(latest))


def current_quarantine(session: Session, limit: int = 100, offset: int = 0) -> list[QuarantineEntry]:
    """What is in quarantine now, newest first."""
    query = (select(QuarantineEntry).where(in_quarantine())
             .order_by(QuarantineEntry.id.desc()).limit(limit).offset(offset))
    return list(session.scalars(query).all())


def quarantine_lines(session: Session, limit: int = 100) -> list[str]:
    out = []
    for q in reversed(current_quarantine(session, limit)):
        study = session.get(Study, q.study_id) if q.study_id else None
        out.append(f"{_when(q.at)}  #{q.id:<5} {q.stage:<8} {(study.label if study else '-'):<64} {q.reason}")
    return out
