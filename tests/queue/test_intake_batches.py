"""Many arrivals recorded in one transaction (the group committer's intake), on SQLite and on
PostgreSQL: each ends as :func:`register_instance` would have left it alone, and a batch racing
another node's for the same new instance loses nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db import Database
from gateway.ingest.validate import InstanceHeader
from gateway.queue.intake import Arrival, Intake, Recorded, register_arrivals
from gateway.queue.tables import Instance, Study, StudyState
from gateway.schema import Base

SECRET = b"k" * 32
STUDY = "1.2.9"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres").url
    db = Database(url)
    db.create_schema()
    yield db
    Base.metadata.drop_all(db.engine)  # PostgreSQL's database outlives the test
    db.dispose()


def arrival(sop: str, content: str = "v1", study: str = STUDY) -> Arrival:
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", sop, study, study + ".1", "1.2.840.10008.1.2.1")
    return Arrival(header, Path(f"/spool/{sop}-{content}"), f"{sop}-{content}", 10, "SCANNER", "127.0.0.1")


def record(db: Database, arrivals: list[Arrival]) -> list[Recorded | Exception]:
    with db.session() as session:
        return register_arrivals(session, SECRET, arrivals)


def test_new_instances_of_new_and_known_studies_are_recorded_together(database):
    record(database, [arrival("1.2.9.1")])
    results = record(database, [arrival("1.2.9.2"), arrival("1.2.9.3"), arrival("1.2.8.1", study="1.2.8")])

    assert [r.outcome for r in results] == [Intake.NEW] * 3
    assert [r.kept_at for r in results] == ["/spool/1.2.9.2-v1", "/spool/1.2.9.3-v1", "/spool/1.2.8.1-v1"]
    with database.session() as session:
        rows = session.scalars(select(Instance).order_by(Instance.id)).all()
        assert [(r.calling_ae, r.calling_address, r.state) for r in rows] == [("SCANNER", "127.0.0.1", "received")] * 4
        assert len({r.study_id for r in rows}) == 2
        assert results[0].study_id == rows[0].study_id


def test_resends_new_versions_and_repeats_in_one_batch_are_told_apart(database):
    record(database, [arrival("1.2.9.1"), arrival("1.2.9.2")])
    results = record(database, [
        arrival("1.2.9.1"),                # the same bytes again
        arrival("1.2.9.2", "v2"),          # a new version
        arrival("1.2.9.3"), arrival("1.2.9.3"),  # one new instance, twice
    ])

    assert [r.outcome for r in results] == [Intake.DUPLICATE, Intake.REPLACED, Intake.NEW, Intake.DUPLICATE]
    assert results[0].kept_at == "/spool/1.2.9.1-v1"  # the copy kept the first time
    assert results[1].superseded == ["/spool/1.2.9.2-v1"]
    with database.session() as session:
        assert len(session.scalars(select(Instance)).all()) == 3


def test_a_batch_reopens_a_finished_study(database):
    record(database, [arrival("1.2.9.1")])
    with database.session() as session:
        session.scalars(select(Study)).one().state = StudyState.DONE
    record(database, [arrival("1.2.9.2")])
    with database.session() as session:
        assert session.scalars(select(Study)).one().state == StudyState.RECEIVING


def test_two_batches_bringing_the_same_new_instance_at_once_both_succeed(database):
    """On PostgreSQL the second batch's insert waits for the first's uncommitted row, then breaks
    the unique key: it falls back to one instance at a time and finds the first's row."""
    outcome: list = []
    with database.session() as session:
        register_arrivals(session, SECRET, [arrival("1.2.9.1"), arrival("1.2.9.2")])
        second = threading.Thread(target=lambda: outcome.extend(record(database, [arrival("1.2.9.2"), arrival("1.2.9.3")])))
        second.start()
        time.sleep(0.5 if not database.is_sqlite else 0)  # let it reach its insert, behind ours
    second.join(30)
    assert [r.outcome for r in outcome] == [Intake.DUPLICATE, Intake.NEW]
    with database.session() as session:
        assert len(session.scalars(select(Instance)).all()) == 3
