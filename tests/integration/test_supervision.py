"""``serve`` starts again a process of its own that has ended without being told to (a crash,
the OOM killer): a gateway whose worker died would go on receiving and never forward."""

from __future__ import annotations

import psutil
import pytest
from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.report import status_lines
from gateway.audit.tables import AuditEvent
from gateway.db import Database
from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")


def _spawned(serve: psutil.Process) -> set[int]:
    """The processes ``serve`` started itself (not the resource tracker), alive."""
    alive = set()
    for child in serve.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return alive


def test_every_process_of_serve_killed_is_started_again_and_the_study_goes_through(archive, gateway_factory, study):
    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": False})
    gateway.receiver_processes = 2
    gateway.start()
    serve = psutil.Process(gateway.process.pid)
    wait_for(lambda: len(_spawned(serve)) == 3, 30, what="the worker, the forwarder and a second receiver")
    killed = _spawned(serve)
    for pid in killed:
        psutil.Process(pid).kill()

    wait_for(lambda: len(_spawned(serve)) == 3 and not _spawned(serve) & killed, 30, what="all three started again")
    log = (gateway.workdir / "gateway.log").read_text()
    for name in ("worker", "forwarder", "receiver-1"):
        assert f"the {name} process ended (exit code -9); starting it again" in log
    assert storescu(gateway.port, study.files).returncode == 0
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="the study archived")
    database = Database(f"sqlite:///{gateway.workdir / 'var' / 'gateway.db'}")
    with database.reading() as session:
        ended = [(e.detail["process"], e.detail["exit_code"]) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.event == audit.PROCESS_ENDED))]
        assert sorted(ended) == [("forwarder", -9), ("receiver", -9), ("worker", -9)]
        assert "processes started again after ending untold: forwarder=1, receiver=1, worker=1" in status_lines(session)
