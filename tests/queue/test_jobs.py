"""The queue on real databases (SQLite, and PostgreSQL when installed): stability, follow-up
jobs, atomic claims, leases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import load_config
from gateway.db import Database
from gateway.schema import Base
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import Intake, register_instance
from gateway.queue.tables import Instance, InstanceState, Job, JobState
from gateway.queue.stability import queue_stable_studies, reclaim_expired_leases
from gateway.service import Runtime, scheduler_tick
from tests.peers import wait_for

SECRET = b"k" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    return load_config(None, {
        "storage": {"root": str(tmp_path)},
        "database": {"url": url},
        "queue": {"stable_after": 0.2, "lease_seconds": 0.5, "max_job_attempts": 2},
    })


@pytest.fixture
def db(config):
    database = Database(config.database.url)
    database.create_schema()
    yield database
    Base.metadata.drop_all(database.engine)  # PostgreSQL's database outlives the test
    database.dispose()


def receive(db, study: str, sop: str, content: str = "v1") -> Intake:
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", sop, study, study + ".1", "1.2.840.10008.1.2.1")
    with db.session() as session:
        outcome, _, _ = register_instance(session, SECRET, header, Path(f"/spool/{sop}-{content}"),
                                          f"{sop}-{content}", 10, "SCANNER")
    return outcome


def jobs(db) -> list[tuple[int, list[str]]]:
    with db.session() as session:
        rows = session.execute(select(Job.id, Instance.spool_path).join(Instance, Instance.job_id == Job.id)
                               .order_by(Job.id, Instance.id)).all()
    out: dict[int, list[str]] = {}
    for job_id, path in rows:
        out.setdefault(job_id, []).append(Path(path).name.split("-")[0])
    return list(out.items())


def test_a_study_becomes_a_job_only_once_it_is_quiet(db, config):
    receive(db, "1.2.3", "1.2.3.1")
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 0
    time.sleep(0.3)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    assert jobs(db)[0][1] == ["1.2.3.1"]


def test_the_same_instance_twice_is_one_instance(db, config):
    assert receive(db, "1.2.3", "1.2.3.1") is Intake.NEW
    assert receive(db, "1.2.3", "1.2.3.1") is Intake.DUPLICATE
    assert receive(db, "1.2.3", "1.2.3.1", content="v2") is Intake.REPLACED
    with db.session() as session:
        assert len(session.scalars(select(Instance)).all()) == 1


def test_instances_arriving_during_processing_form_a_follow_up_job(db, config):
    receive(db, "1.2.3", "1.2.3.1")
    receive(db, "1.2.3", "1.2.3.2")
    time.sleep(0.3)
    queue_stable_studies(db, config.queue, config.pixels.enabled)
    worker = Worker.from_config(config, db, Pipeline([], {}))
    first = worker.jobs.claim()

    receive(db, "1.2.3", "1.2.3.3")  # arrives while the first job runs
    time.sleep(0.3)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 0  # never two jobs for one study at once

    with db.session() as session:
        session.get(Job, first).state = JobState.DONE
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    assert jobs(db) == [(first, ["1.2.3.1", "1.2.3.2"]), (first + 1, ["1.2.3.3"])]


def test_two_workers_never_claim_the_same_job(db, config):
    for n in range(20):
        receive(db, f"1.2.{n}", f"1.2.{n}.1")
    time.sleep(0.3)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 20

    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all():
        database = Database(config.database.url)  # its own connections, as another process has
        worker = Worker.from_config(config, database, Pipeline([], {}))
        while (job := worker.jobs.claim()) is not None:
            with lock:
                claimed.append(job)
        database.dispose()

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 20


def test_a_job_whose_worker_died_is_taken_again_then_fails_after_too_many_attempts(db, config):
    receive(db, "1.2.3", "1.2.3.1")
    time.sleep(0.3)
    queue_stable_studies(db, config.queue, config.pixels.enabled)
    worker = Worker.from_config(config, db, Pipeline([], {}))
    job_id = worker.jobs.claim()
    time.sleep(0.6)  # the worker "died": its lease runs out
    assert reclaim_expired_leases(db, config.queue) == 1
    assert worker.jobs.claim() == job_id
    time.sleep(0.6)
    reclaim_expired_leases(db, config.queue)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job.state == JobState.FAILED and job.attempts == 2
        assert session.scalars(select(Instance)).one().state == InstanceState.QUEUED


def test_two_associations_bringing_one_new_study_at_once_both_succeed(db, config):
    """The second intake finds no study, inserts one, waits on the first's uncommitted row and
    then breaks the unique key (PostgreSQL): it must read the first's row instead of failing."""
    outcome: list[Intake] = []
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", "1.2.9.1", "1.2.9", "1.2.9.0", "1.2.840.10008.1.2.1")
    with db.session() as session:
        register_instance(session, SECRET, header, Path("/spool/a"), "a", 10, "SCU_A")
        second = threading.Thread(target=lambda: outcome.append(receive(db, "1.2.9", "1.2.9.2")))
        second.start()
        time.sleep(0.5 if not db.is_sqlite else 0)  # let it reach its insert, behind ours
    second.join(30)
    assert outcome == [Intake.NEW]
    with db.session() as session:
        studies = {row.study_id for row in session.scalars(select(Instance))}
    assert len(studies) == 1


def test_the_worker_starts_a_job_as_soon_as_the_scheduler_makes_it(db, config):
    """Not at its next poll, which may be seconds away (queue.worker_poll_interval)."""
    worker = Worker.from_config(config, db, Pipeline([], {}))
    worker.poll_interval = 60.0
    jobs_made, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop, jobs_made))
    thread.start()
    try:
        time.sleep(0.3)  # it found nothing to do, and waits
        receive(db, "1.2.3", "1.2.3.1")
        time.sleep(0.3)  # quiet for longer than stable_after
        scheduler_tick(Runtime(config, db, SECRET), jobs_made)
        assert jobs_made.is_set()
        wait_for(lambda: _states(db) == [JobState.DONE], 10, interval=0.05, what="the job run")
    finally:
        stop.set()
        jobs_made.set()
        thread.join(10)


def _states(db) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Job.state)))
