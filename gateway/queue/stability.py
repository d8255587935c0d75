"""Turning quiet studies into jobs, and taking back jobs whose worker died.

Run periodically by the scheduler. Both steps are idempotent, so several gateway processes
may run them against one database.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update

from gateway.audit import events as audit
from gateway.db import Database
from gateway.queue.config import QueueConfig
from gateway.queue.jobs import give_up_or_requeue
from gateway.queue.tables import (
    Instance,
    InstanceState,
    Job,
    JobPhase,
    JobState,
    PreparerSeen,
    Study,
    StudyState,
    utcnow,
)


def queue_stable_studies(db: Database, queue: QueueConfig, pixels_enabled: bool) -> int:
    """Give each quiet study's waiting instances a job; returns the number of jobs made.

    A study with a job still pending or running gets no second one: its newly arrived
    instances wait and become the follow-up job once the current one is finished, so two
    workers never hold the same study.

    With the pixel stage on and some preparer alive, a study waits, however quiet, until every
    received instance has been prepared (the pixel stage run on it as it arrived,
    :mod:`gateway.pipeline.prepare`); its job then needs only the header stage. With no preparer
    seen for a lease, the job runs the pixel stage itself. It starts in the pixel phase, so that a split
    deployment's pixel worker sees it first, only when some instance was left to the job.
    """
    cutoff = utcnow() - timedelta(seconds=queue.stable_after)
    busy = select(Job.study_id).where(Job.state.in_([JobState.PENDING, JobState.RUNNING]))
    waiting = (
        select(Instance.study_id, func.count(Instance.id))
        .join(Study, Study.id == Instance.study_id)
        .where(Instance.state == InstanceState.RECEIVED)
        .where(Study.last_received_at <= cutoff)
        .where(Instance.study_id.not_in(busy))
        .group_by(Instance.study_id)
    )
    if not _any(db, waiting):
        return 0
    made = 0
    with db.session() as session:
        if pixels_enabled and _preparers_alive(session, queue):
            waiting = waiting.where(Instance.study_id.not_in(_unprepared()))
        for study_id, count in session.execute(waiting).all():
            study = session.get(Study, study_id)
            phase = JobPhase.PIXELS if pixels_enabled and _left_to_the_job(session, study_id) else JobPhase.HEADERS
            job = Job(study_id=study_id, state=JobState.PENDING, phase=phase)
            session.add(job)
            session.flush()
            session.execute(
                update(Instance)
                .where(Instance.study_id == study_id, Instance.state == InstanceState.RECEIVED)
                .values(state=InstanceState.QUEUED, job_id=job.id)
            )
            study.state = StudyState.READY
            audit.record(session, audit.STABLE, study=study, actor="scheduler", instances=count, job=job.id)
            made += 1
    return made


def _any(db: Database, query) -> bool:
    """Whether ``query`` finds a row, asked without the write lock: the scheduler looks every
    ``queue.scan_interval`` and mostly finds nothing, and each look in a write transaction made
    the receiver's commits (a C-STORE is answered after its commit) wait their turn behind it.
    What it finds is looked for again in the write transaction that acts on it."""
    with db.reading() as session:
        return session.execute(query.limit(1)).first() is not None


def _preparers_alive(session, queue: QueueConfig) -> bool:
    since = utcnow() - timedelta(seconds=queue.lease_seconds)
    return session.scalars(select(PreparerSeen.owner).where(PreparerSeen.seen_at > since).limit(1)).first() is not None


def _unprepared():
    """Studies with a received instance whose current version has no preparation yet."""
    return select(Instance.study_id).where(
        Instance.state == InstanceState.RECEIVED,
        or_(Instance.prepared_sha256.is_(None), Instance.prepared_sha256 != Instance.sha256),
    )


def _left_to_the_job(session, study_id: int) -> bool:
    """Whether a preparer left some received instance of the study to the job (no context)."""
    return session.scalars(
        select(Instance.id).where(Instance.study_id == study_id, Instance.state == InstanceState.RECEIVED,
                                  Instance.prepared_context.is_(None)).limit(1)
    ).first() is not None


def reclaim_expired_leases(db: Database, queue: QueueConfig) -> int:
    """Jobs whose lease ran out go back to pending, or fail after too many attempts."""
    now = utcnow()
    expired_jobs = select(Job).where(Job.state == JobState.RUNNING, Job.lease_expires_at < now)
    if not _any(db, expired_jobs):
        return 0
    reclaimed = 0
    with db.session() as session:
        expired = session.scalars(expired_jobs).all()
        for job in expired:
            requeued = give_up_or_requeue(session, job, max_attempts=queue.max_job_attempts,
                                          error="lease expired too often",
                                          reason="worker lease expired too often", actor="scheduler")
            if requeued:
                audit.record(session, audit.LEASE_EXPIRED, study=session.get(Study, job.study_id),
                             actor="scheduler", job=job.id, attempts=job.attempts)
            reclaimed += 1
    return reclaimed
