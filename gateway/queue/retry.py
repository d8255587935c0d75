"""Sending a failed study again, on an operator's request."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.queue.tables import Delivery, DeliveryState, Job, JobState, Study, StudyState, utcnow


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
