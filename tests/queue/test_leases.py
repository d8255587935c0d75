"""A lease lives while the work goes on: a slow instance is never taken for a dead worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydicom.data import get_testdata_file
from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.config import load_config
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies, reclaim_expired_leases
from gateway.queue.tables import Job, JobState

SECRET = b"k" * 32
LEASE = 0.6


class SlowStage:
    """An instance stage that takes three leases' time, like a long cine on a busy CPU."""

    name = "slow"

    def __call__(self, ds, ctx):
        time.sleep(3 * LEASE)
        return ds


def test_a_slow_instance_keeps_its_job_and_is_done_once(tmp_path):
    config = load_config(None, {"storage": {"root": str(tmp_path)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "queue": {"stable_after": 0.01, "lease_seconds": LEASE},
                                "pixels": {"enabled": False}})
    db = Database(config.database.url)
    db.create_schema()
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    path = hashed_path(config.storage.spool, sha256_hex(data))
    write_durably(path, data)
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", "1.2.7.1", "1.2.7", "1.2.7.0", "1.2.840.10008.1.2.1")
    with db.session() as session:
        register_instance(session, SECRET, header, path, sha256_hex(data), len(data), "SCANNER")
    time.sleep(0.02)
    queue_stable_studies(db, config.queue, config.pixels.enabled)
    pipeline = build_pipeline(config, db, SECRET, device="cpu")
    pipeline.instance_stages.append(SlowStage())
    worker = Worker.from_config(config, db, pipeline)

    working = threading.Thread(target=worker.run_once)
    working.start()
    while working.is_alive():  # the scheduler, as eager as it can be
        reclaim_expired_leases(db, config.queue)
        time.sleep(0.05)

    with db.session() as session:
        job = session.scalars(select(Job)).one()
        assert (job.state, job.attempts) == (JobState.DONE, 1)
        expired = session.scalars(select(AuditEvent).where(AuditEvent.event == audit.LEASE_EXPIRED)).all()
        assert expired == []
