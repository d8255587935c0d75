"""QA sign-off: a reviewer's verdict on a study's redactions, kept in the audit trail.

A verdict is one of a fixed list (no free text: a comment box would invite someone to type a
patient's name into the audit). The latest sign-off of a study is the one that counts; the
earlier ones stay in its timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.queue.tables import Study

SIGNED_OFF = "qa_signoff"
VERDICTS = ("approved", "needs-changes")


@dataclass(frozen=True)
class SignOff:
    user: str
    verdict: str
    at: datetime


def sign_off(session: Session, study: Study, user: str, verdict: str, actor: str) -> None:
    if verdict not in VERDICTS:
        raise ValueError(f"a verdict is one of {', '.join(VERDICTS)}")
    audit.record(session, SIGNED_OFF, study=study, actor=actor, user=user, verdict=verdict)


def _signoff(event: AuditEvent) -> SignOff:
    return SignOff(str(event.detail.get("user", "")), str(event.detail.get("verdict", "")), event.at)


def signoffs(session: Session, study: Study) -> list[SignOff]:
    """Every sign-off of the study, oldest first."""
    return [_signoff(e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.event == SIGNED_OFF, AuditEvent.study_id == study.id)
        .order_by(AuditEvent.id))]


def latest_signoffs(session: Session, study_ids: list[int]) -> dict[int, SignOff]:
    latest = (select(func.max(AuditEvent.id)).where(AuditEvent.event == SIGNED_OFF,
                                                    AuditEvent.study_id.in_(study_ids))
              .group_by(AuditEvent.study_id))
    return {e.study_id: _signoff(e) for e in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(latest)))}
