"""A pull's state in the database, so that it survives a crash or a stop and resumes.

A run is found again by the keyed hash of its source and request list; each requested item by
its line, with its keyed hash to check it is the same request. Studies are kept by the keyed
hash of their Study UID, the queue's ``study_key``. No value of a request is stored. Every
item that reaches an outcome is audited: the run, the line, the outcome and counts.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import func, select

from gateway import keys
from gateway.audit import events as audit
from gateway.db import Database
from gateway.pull.dimse import Retrieved
from gateway.pull.requests import PullRequest
from gateway.queue.tables import PullItem, PullItemState, PullRun, PullStudy, utcnow


def item_key(secret: bytes, request: PullRequest) -> str:
    return keys.keyed_digest(secret, keys.PULL, request.canonical())


def study_key(secret: bytes, study_uid: str) -> str:
    """The queue's key of a study (``studies.study_key``)."""
    return keys.keyed_digest(secret, keys.STUDY, study_uid)


class PullState:
    """One process's view of the pull tables."""

    def __init__(self, db: Database, secret: bytes, actor: str):
        self.db, self.secret, self.actor = db, secret, actor

    def open_run(self, source: str, kind: str, requests: list[PullRequest]) -> tuple[int, bool]:
        """The run of this source and request list, made if new; and whether it existed."""
        item_keys = [item_key(self.secret, r) for r in requests]
        key = keys.keyed_digest(self.secret, keys.PULL, json.dumps([source, kind, item_keys]))
        with self.db.session() as session:
            run = session.scalars(select(PullRun).where(PullRun.run_key == key)).first()
            if run is not None:
                return run.id, True
            run = PullRun(run_key=key, source=source, kind=kind, items=len(requests))
            session.add(run)
            session.flush()
            session.add_all(PullItem(run_id=run.id, line=r.line, item_key=k) for r, k in zip(requests, item_keys, strict=True))
            return run.id, False

    def todo(self, run_id: int, find_only: bool) -> dict[int, int]:
        """Line -> item id of the items this run still has to do: not yet queried, queried but not
        all retrieved (unless only finding), or failed last time."""
        states = [PullItemState.PENDING, PullItemState.FAILED] + ([] if find_only else [PullItemState.FOUND])
        with self.db.session() as session:
            rows = session.execute(select(PullItem.line, PullItem.id).where(
                PullItem.run_id == run_id, PullItem.state.in_(states)).order_by(PullItem.line)).all()
        return dict(rows)

    def begin(self, item_id: int) -> None:
        with self.db.session() as session:
            session.get(PullItem, item_id).attempts += 1

    def found(self, item_id: int, study_keys: list[str]) -> set[str]:
        """Record the studies the PACS answered; returns the keys retrieved by an earlier run."""
        with self.db.session() as session:
            item = session.get(PullItem, item_id)
            known = {s.study_key: s for s in session.scalars(select(PullStudy).where(PullStudy.item_id == item_id))}
            session.add_all(PullStudy(item_id=item_id, study_key=k) for k in study_keys if k not in known)
            item.state, item.studies, item.reason = PullItemState.FOUND, len(study_keys), None
            return {k for k, s in known.items() if s.retrieved}

    def retrieved(self, item_id: int, key: str, outcome: Retrieved) -> None:
        with self.db.session() as session:
            study = session.scalars(select(PullStudy).where(PullStudy.item_id == item_id,
                                                            PullStudy.study_key == key)).one()
            study.retrieved = outcome.whole
            study.completed, study.failed, study.status = outcome.completed, outcome.failed, outcome.status_text

    def finish(self, run_id: int, item_id: int, state: str, reason: str | None = None) -> None:
        """The item's outcome, and its audit row (line, outcome, counts; no value)."""
        with self.db.session() as session:
            item = session.get(PullItem, item_id)
            completed, failed = session.execute(
                select(func.coalesce(func.sum(PullStudy.completed), 0), func.coalesce(func.sum(PullStudy.failed), 0))
                .where(PullStudy.item_id == item_id)).one()
            item.state, item.reason, item.instances, item.failed = state, reason, completed, failed
            detail = {"run": run_id, "line": item.line, "outcome": state, "studies": item.studies,
                      "instances": completed, "failed": failed}
            audit.record(session, audit.PULL_ITEM, actor=self.actor, **detail, **({"reason": reason} if reason else {}))

    def close(self, run_id: int) -> Counter:
        """Items by state; the run is marked finished once every item has its outcome."""
        with self.db.session() as session:
            counts = Counter(dict(session.execute(select(PullItem.state, func.count()).where(
                PullItem.run_id == run_id).group_by(PullItem.state)).all()))
            run = session.get(PullRun, run_id)
            if sum(counts[s] for s in PullItemState.FINAL) == run.items and run.finished_at is None:
                run.finished_at = utcnow()
            return counts
