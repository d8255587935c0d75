"""The job state machine: claim, renew, finish, hand over, give up or requeue.

A job moves ``pending -> running -> done``, or back to ``pending`` (retried, handed to workers
of another role), or to ``failed`` after ``queue.max_job_attempts``. A running job is leased:
its owner renews the lease on a timer while it works (:meth:`JobLease.heartbeat`) and in every
transaction that records progress, and a worker that finds its lease gone (:class:`LeaseLost`)
stops writing, because another worker has the job now.
Expired leases are taken back by the scheduler (:func:`gateway.queue.stability.reclaim_expired_leases`)
with the same rule as a failed attempt: :func:`give_up_or_requeue`.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.db import Database
from gateway.queue.config import QueueConfig
from gateway.queue.heartbeat import Heartbeat
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Job,
    JobPhase,
    JobState,
    Study,
    StudyState,
    WorkerRole,
    utcnow,
)


class LeaseLost(Exception):
    """Another worker took the job over; stop without writing anything more."""


def give_up_or_requeue(session: Session, job: Job, *, max_attempts: int, error: str, reason: str,
                       actor: str) -> bool:
    """Release ``job``'s lease; fail it (and its study) once it has had ``max_attempts``,
    else put it back in the queue. Returns whether it was requeued.

    ``error`` is kept on the job; ``reason`` is the audit's, from a fixed vocabulary.
    """
    job.lease_owner = None
    job.lease_expires_at = None
    job.error = error
    if job.attempts < max_attempts:
        job.state = JobState.PENDING
        return True
    study = session.get(Study, job.study_id)
    job.state = JobState.FAILED
    job.finished_at = utcnow()
    study.state = StudyState.FAILED
    audit.record(session, audit.FAILED, study=study, actor=actor, job=job.id, reason=reason,
                 attempts=job.attempts)
    return False


class JobLease:
    """One worker's side of the state machine: the jobs it may take and its hold on them."""

    def __init__(self, db: Database, queue: QueueConfig, owner: str, role: str = WorkerRole.ALL):
        if role not in WorkerRole.CHOICES:
            raise ValueError(f"unknown worker role {role!r}")
        self.db = db
        self.owner = owner
        self.role = role
        self.max_attempts = queue.max_job_attempts
        self.lease = timedelta(seconds=queue.lease_seconds)

    def claim(self) -> int | None:
        """Take the oldest pending job. Atomic: BEGIN IMMEDIATE on SQLite, SKIP LOCKED elsewhere."""
        with self.db.session() as session:
            query = select(Job).where(Job.state == JobState.PENDING).order_by(Job.id).limit(1)
            if self.role == WorkerRole.PIXELS:
                query = query.where(or_(Job.phase == JobPhase.PIXELS, Job.phase.is_(None)))
            elif self.role == WorkerRole.HEADERS:
                query = query.where(Job.phase == JobPhase.HEADERS)
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            job = session.scalars(query).first()
            if job is None:
                return None
            job.state = JobState.RUNNING
            job.attempts += 1
            job.lease_owner = self.owner
            job.lease_expires_at = utcnow() + self.lease
            session.get(Study, job.study_id).state = StudyState.PROCESSING
            return job.id

    def renew(self, session: Session, job_id: int) -> None:
        """Extend the lease inside ``session``; raises :class:`LeaseLost` if it is not ours."""
        renewed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == self.owner, Job.state == JobState.RUNNING)
            .values(lease_expires_at=utcnow() + self.lease)
        ).rowcount
        if not renewed:
            raise LeaseLost()

    def heartbeat(self, job_id: int) -> Heartbeat:
        """Keeps the lease on ``job_id`` alive while the worker is on it: renewed every third
        of its length, so a slow instance never looks like a dead worker."""

        def beat() -> bool:
            try:
                with self.db.session() as session:
                    self.renew(session, job_id)
            except LeaseLost:
                return False
            return True

        return Heartbeat(beat, self.lease.total_seconds() / 3, name=f"lease-{job_id}")

    def finish(self, job_id: int, outcome: Counter, actions: dict[str, Counter], options: set[str]) -> None:
        """The job is done; its study forwards, or is done if no delivery is outstanding."""
        with self.db.session() as session:
            self.renew(session, job_id)
            job = session.get(Job, job_id)
            job.state = JobState.DONE
            job.finished_at = utcnow()
            job.lease_owner = None
            job.lease_expires_at = None
            study = session.get(Study, job.study_id)
            pending = session.scalars(
                select(Delivery.id).where(
                    Delivery.study_id == study.id,
                    Delivery.state.in_([DeliveryState.PENDING, DeliveryState.SENDING]),
                ).limit(1)
            ).first()
            study.state = StudyState.FORWARDING if pending else StudyState.DONE
            audit.record(
                session, audit.PROCESSED, study=study, actor=self.owner, job=job_id,
                instances=outcome.get("processed", 0), quarantined=outcome.get("quarantined", 0),
                actions={stage: dict(counts) for stage, counts in actions.items()},
                options=sorted(options),
            )

    def hand_over(self, job_id: int, phase: str, outcome: Counter | None = None) -> None:
        """Put the job back in the queue for workers of another role."""
        with self.db.session() as session:
            self.renew(session, job_id)
            job = session.get(Job, job_id)
            job.phase = phase
            job.state = JobState.PENDING
            job.attempts = 0  # the next phase gets attempts of its own
            job.lease_owner = None
            job.lease_expires_at = None
            if outcome is not None:
                audit.record(session, audit.PIXELS_CLEANED, study=session.get(Study, job.study_id),
                             actor=self.owner, job=job_id, instances=outcome.get("cleaned", 0),
                             quarantined=outcome.get("quarantined", 0))

    def fail_or_retry(self, job_id: int, error: str) -> None:
        """An attempt failed as a whole (not one instance): try again later, or give up."""
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job.lease_owner != self.owner:
                return
            give_up_or_requeue(session, job, max_attempts=self.max_attempts, error=error,
                               reason=f"processing failed ({error})", actor=self.owner)
