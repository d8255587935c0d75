"""An acknowledged instance survives a SIGKILL of the gateway and is delivered once."""

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.integration.conftest import destination_for
from tests.peers import free_port, storescu, wait_for


def test_instances_acknowledged_before_a_kill_are_delivered_after_restart(archive, gateway_factory, study):
    # Long enough quiet time that the kill lands after acknowledgement, before forwarding.
    gateway = gateway_factory([destination_for(archive)], queue={"stable_after": 8}).start()
    sent = storescu(gateway.port, study.files)
    acknowledged = re.findall(r"Received Store Response \((\w+)", sent.stdout + sent.stderr)
    assert acknowledged == ["Success"] * len(study.files)

    gateway.kill()
    assert archive.instances() == []

    gateway.start()
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="delivery after restart")
    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="study closed")
    assert archive.stores_received() == len(study.files)


def _job_half_done(database: Path) -> bool:
    """A job is running and has committed some of its instances, not all: the worker is mid-job."""
    if not database.exists():
        return False
    with closing(sqlite3.connect(database, timeout=5)) as db:
        running = db.execute("SELECT id FROM jobs WHERE state = 'running'").fetchall()
        if not running:
            return False
        states = [row[0] for row in db.execute("SELECT state FROM instances WHERE job_id = ?", running[0])]
    return "processed" in states and "queued" in states


def test_a_job_held_by_a_killed_worker_is_taken_again_after_its_lease(archive, gateway_factory, study):
    # The archive is out of reach until the restart: outputs cannot leave before the kill, and
    # the kill cannot catch the forwarder mid-send (a delivery would then be held for the dead
    # forwarder's lease, minutes). Each failed try waits 5 s, far from giving up.
    gateway = gateway_factory(
        [{**destination_for(archive), "port": free_port()}],
        queue={"stable_after": 0.5, "lease_seconds": 3},
        egress={"backoff_initial": 5, "backoff_max": 5},
    ).start()
    storescu(gateway.port, study.files)
    database = gateway.workdir / "var" / "gateway.db"
    wait_for(lambda: _job_half_done(database), 120, interval=0.005, what="the worker to be mid-job")
    gateway.kill()

    gateway.destinations = [destination_for(archive)]
    gateway.start()
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="delivery after restart")
    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="study closed")
    events = gateway.cli("audit", "list", "--limit", "500").stdout
    assert "lease_expired" in events  # the dead worker's lease ran out ...
    with closing(sqlite3.connect(database)) as db:
        jobs = db.execute("SELECT state, attempts FROM jobs ORDER BY id").fetchall()
    # ... and it ran again. On a loaded machine the sender may pause past stable_after, and the
    # study then comes as two jobs, the first done before the kill.
    assert jobs[-1] == ("done", 2) and all(job == ("done", 1) for job in jobs[:-1])
    assert archive.stores_received() == len(study.files)  # each instance delivered exactly once
