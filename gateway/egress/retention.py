"""Retention: the spooled original and the outbox copies of an instance are deleted once every
destination has accepted it, and ``storage.retention_hours`` have passed since the last did.

Run by the scheduler every few seconds. Each pass looks only at instances still ``processed``
(by the index on the state), never at the whole history of deliveries: grouping every delivery
ever made took 82 ms a pass with 200,000 of them. The files are deleted inside the transaction
that marks their instances delivered, so that a crash between the two leaves rows that the
next pass finishes, never files that no row names; and so a pass takes at most
:data:`PURGE_CHUNK` instances per transaction, and stops deleting once it has held the write
lock for :data:`PURGE_SLICE_SECONDS`, since a C-STORE answer waits for that lock meanwhile.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.db import Database
from gateway.queue.tables import Delivery, DeliveryState, Instance, InstanceState, Output, Study, utcnow

#: Instances purged per transaction. Deleting files is slow while others sync theirs (about 1 ms
#: a file in ``bench.chain --studies 4``, where a chunk of 64 held the lock for up to 153 ms):
#: a whole pass in one transaction, after a 3,000-instance study went out, would hold it for
#: seconds.
PURGE_CHUNK = 64
#: ... and a transaction deletes no more once it has run this long: at about 1 ms a file while
#: others sync theirs, a whole chunk kept the receiver's commits waiting for up to 153 ms.
PURGE_SLICE_SECONDS = 0.025


def purge_delivered(db: Database, retention_hours: float) -> int:
    """Purge every instance due (see the module's docstring); returns how many."""
    cutoff = utcnow() - timedelta(hours=retention_hours)
    removed = 0
    more = True
    while more:
        with db.session() as session:
            purged, more = _purge_some(session, cutoff)
        removed += purged
        # between chunks, a writer waiting for its turn (the receiver's) goes first: gateway.turns
    return removed


def _purge_some(session: Session, cutoff: datetime) -> tuple[int, bool]:
    """Instances due, up to :data:`PURGE_CHUNK` and for at most :data:`PURGE_SLICE_SECONDS`:
    their files deleted, their rows marked delivered, and the count audited per study. Returns
    how many, and whether more may be due."""
    started = time.monotonic()
    rows = session.scalars(_due_instances(cutoff)).all()
    files: dict[int, list[str]] = {}
    if rows:
        for output in session.scalars(select(Output).where(Output.instance_id.in_([i.id for i in rows]))):
            files.setdefault(output.instance_id, []).append(output.path)
    by_study: Counter = Counter()
    for instance in rows:
        if by_study and time.monotonic() - started > PURGE_SLICE_SECONDS:
            break
        for path in files.get(instance.id, []):
            Path(path).unlink(missing_ok=True)
        if instance.spool_path:
            Path(instance.spool_path).unlink(missing_ok=True)
            instance.spool_path = None
        instance.state = InstanceState.DELIVERED
        by_study[instance.study_id] += 1
    for study_id, count in by_study.items():
        audit.record(session, audit.PURGED, study=session.get(Study, study_id), actor="scheduler",
                     instances=count)
    purged = sum(by_study.values())
    return purged, purged < len(rows) or len(rows) == PURGE_CHUNK


def _due_instances(cutoff: datetime):
    """The first :data:`PURGE_CHUNK` processed instances whose every delivery was accepted, the
    last before ``cutoff``."""
    deliveries = (
        select(Output.instance_id, func.max(Delivery.delivered_at).label("at"),
               func.sum(case((Delivery.state == DeliveryState.SENT, 0), else_=1)).label("unsent"))
        .join(Delivery, Delivery.output_id == Output.id)
        .join(Instance, Instance.id == Output.instance_id)
        .where(Instance.state == InstanceState.PROCESSED)
        .group_by(Output.instance_id)
        .subquery()
    )
    return (select(Instance).join(deliveries, deliveries.c.instance_id == Instance.id)
            .where(deliveries.c.unsent == 0, deliveries.c.at <= cutoff)
            .order_by(Instance.id).limit(PURGE_CHUNK))
