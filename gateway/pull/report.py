"""What ``deid-gateway pull --status`` shows: pulls and their items by line, outcome and counts,
and how far the gateway has got with the studies retrieved (by queue state only: a line next
to a de-identified UID would link the coordinator's list to the research data without the key)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.queue.tables import PullItem, PullRun, PullStudy, Study


def _when(at) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def run_lines(session: Session) -> list[str]:
    lines = []
    for run in session.scalars(select(PullRun).order_by(PullRun.id)):
        counts = dict(session.execute(select(PullItem.state, func.count()).where(PullItem.run_id == run.id)
                                      .group_by(PullItem.state)).all())
        finished = f"finished {_when(run.finished_at)}" if run.finished_at else "unfinished"
        lines.append(f"run {run.id:<4} {run.source:<12} {run.kind:<10} {run.items} items  "
                     + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f"  started {_when(run.created_at)}, {finished}")
    return lines


def item_lines(session: Session, run_id: int) -> list[str]:
    lines = []
    for item in session.scalars(select(PullItem).where(PullItem.run_id == run_id).order_by(PullItem.line)):
        states = Counter(session.scalars(select(Study.state).join(PullStudy, PullStudy.study_key == Study.study_key)
                                         .where(PullStudy.item_id == item.id)).all())
        gateway = ", ".join(f"{k}={v}" for k, v in sorted(states.items())) or "-"
        reason = f" ({item.reason})" if item.reason else ""
        lines.append(f"line {item.line:<5} {item.state:<10} studies {item.studies}  instances {item.instances}  "
                     f"failed {item.failed}  attempts {item.attempts}  in the gateway: {gateway}{reason}")
    return lines
