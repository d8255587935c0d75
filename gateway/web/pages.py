"""The console's read-only pages: overview, study list, quarantine, audit trail.

They show what the command line shows (de-identified UIDs, states, counts, times, reasons
from a fixed vocabulary) and nothing read from a dataset. Filters come from the query string
and are only ever compared against, or echoed into form fields through autoescaping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select

from gateway.audit.report import current_quarantine, status_lines
from gateway.audit.review import latest_signoffs
from gateway.audit.tables import AuditEvent
from gateway.queue.tables import Delivery, Instance, Study, StudyState
from gateway.web.auth import Visitor, viewing
from gateway.web.layout import render

router = APIRouter()
PAGE = 100
STATES = (StudyState.RECEIVING, StudyState.READY, StudyState.PROCESSING, StudyState.FORWARDING,
          StudyState.DONE, StudyState.FAILED)


@dataclass
class StudyRow:
    study: Study
    instances: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    signoff: str | None = None


@dataclass
class Filters:
    state: str | None = None
    since: date | None = None
    until: date | None = None
    destination: str | None = None


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/")
def overview(request: Request, who: Visitor = Depends(viewing)):
    with request.app.state.console.db.reading() as session:
        status = "\n".join(status_lines(session))
    return render(request, "overview.html", who, title="Gateway status", status=status)


@router.get("/studies")
def studies(request: Request, who: Visitor = Depends(viewing), state: str | None = None,
            since: str | None = None, until: str | None = None, destination: str | None = None,
            offset: int = Query(0, ge=0)):
    console = request.app.state.console
    known = console.destinations()
    f = Filters(state if state in STATES else None, _day(since), _day(until),
                destination if destination in known else None)
    params = {k: v for k, v in (("state", f.state), ("since", f.since), ("until", f.until),
                                ("destination", f.destination)) if v}
    page = lambda at: "/studies?" + urlencode({**params, "offset": at})  # noqa: E731
    with console.db.reading() as session:  # rendered inside: the rows are the session's
        rows = _study_rows(session, f, offset)
        return render(request, "studies.html", who, title="Studies", rows=rows, f=f, states=STATES,
                      destinations=known, prev_url=page(max(0, offset - PAGE)) if offset else None,
                      next_url=page(offset + PAGE) if len(rows) == PAGE else None)


def _study_rows(session, f: Filters, offset: int) -> list[StudyRow]:
    query = select(Study).order_by(Study.last_received_at.desc(), Study.id.desc())
    if f.state:
        query = query.where(Study.state == f.state)
    if f.since:
        query = query.where(Study.last_received_at >= datetime.combine(f.since, datetime.min.time()))
    if f.until:
        query = query.where(Study.first_received_at < datetime.combine(f.until + timedelta(days=1),
                                                                       datetime.min.time()))
    if f.destination:
        query = query.where(Study.id.in_(select(Delivery.study_id).where(Delivery.destination == f.destination)))
    rows = {s.id: StudyRow(s) for s in session.scalars(query.limit(PAGE).offset(offset)).all()}
    if not rows:
        return []
    ids = list(rows)
    for study_id, state, n in session.execute(
        select(Instance.study_id, Instance.state, func.count())
        .where(Instance.study_id.in_(ids)).group_by(Instance.study_id, Instance.state)
    ).all():
        rows[study_id].instances[state] = n
    for study_id, destination, state, n in session.execute(
        select(Delivery.study_id, Delivery.destination, Delivery.state, func.count())
        .where(Delivery.study_id.in_(ids)).group_by(Delivery.study_id, Delivery.destination, Delivery.state)
    ).all():
        rows[study_id].deliveries[destination][state] = n
    for study_id, signoff in latest_signoffs(session, ids).items():
        rows[study_id].signoff = f"{signoff.verdict} by {signoff.user}"
    return list(rows.values())


@router.get("/quarantine")
def quarantine(request: Request, who: Visitor = Depends(viewing)):
    with request.app.state.console.db.reading() as session:
        entries = current_quarantine(session, limit=500)
        studies = {s.id: s for s in session.scalars(
            select(Study).where(Study.id.in_({e.study_id for e in entries if e.study_id})))}
        rows = [{"entry": e, "study": studies.get(e.study_id)} for e in entries]
        return render(request, "quarantine.html", who, title="Quarantine", rows=rows,
                      can_act=who.user.can("operator"))


@router.get("/audit")
def audit_trail(request: Request, who: Visitor = Depends(viewing), event: str | None = None,
                limit: int = Query(200, ge=1, le=5000)):
    with request.app.state.console.db.reading() as session:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if event:
            query = query.where(AuditEvent.event == event)
        events = list(reversed(session.scalars(query).all()))
        return render(request, "audit.html", who, title="Audit trail", events=events, event=event)

