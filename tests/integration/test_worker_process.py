"""Under ``serve`` the studies' jobs run in a worker process of its own, beside the receiver's:
in one process, Python runs one thread at a time."""

from __future__ import annotations

import os

import psutil
import pytest
from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.db import Database
from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")


def _processed_by(db: Database) -> list[str]:
    with db.reading() as session:
        return list(session.scalars(select(AuditEvent.actor).where(AuditEvent.event == audit.PROCESSED)))


def test_the_job_runs_in_a_process_of_its_own(archive, gateway_factory, study):
    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": False}).start()
    storescu(gateway.port, study.files)
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="the study archived")

    (actor,) = _processed_by(Database(f"sqlite:///{gateway.workdir / 'var' / 'gateway.db'}"))
    worker = psutil.Process(int(actor.split(":")[-2]))  # worker@host:pid:tag
    serve = psutil.Process(gateway.process.pid)
    assert worker.pid != serve.pid
    assert worker.ppid() == serve.pid
    assert os.path.exists(gateway.workdir / "var" / "gateway.db-turns")
