"""Preparers' claims on SQLite and PostgreSQL: two never hold the same instance, a dead one's
instances are taken again after its lease, and a study waits for its preparations."""

from __future__ import annotations

import time

from sqlalchemy import select

from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.prepare import Preparer
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Job, JobPhase
from gateway.rules.router import Router
from tests.queue.test_jobs import config, db, receive  # noqa: F401 - the fixtures


def test_preparers_never_claim_the_same_instance_and_the_study_waits_for_them(db, config):
    for n in range(6):
        receive(db, "1.2.3", f"1.2.3.{n}")
    time.sleep(0.3)  # quiet for longer than stable_after
    first, second = (Preparer(db, Pipeline([], {}), queue=config.queue, storage=config.storage,
                              router=Router.from_config(config), group=4, owner=name) for name in ("a", "b"))
    mine, theirs = first.claim(), second.claim()
    assert (len(mine), len(theirs)) == (4, 2)
    assert not {row.id for row in mine} & {row.id for row in theirs}
    assert second.claim() == []  # every instance is held
    assert queue_stable_studies(db, config.queue, True) == 0  # quiet, but its pixels are not done

    first._record(mine, [("{}", None)] * len(mine))
    time.sleep(config.queue.lease_seconds)  # the second preparer died: its lease runs out
    taken_again = first.claim()
    assert {row.id for row in taken_again} == {row.id for row in theirs}
    first._record(taken_again, [("{}", None)] * len(taken_again))
    assert queue_stable_studies(db, config.queue, True) == 1
    with db.session() as session:
        assert session.scalars(select(Job)).one().phase == JobPhase.HEADERS
