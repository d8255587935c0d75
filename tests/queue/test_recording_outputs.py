"""What a job leaves in the database, on SQLite and PostgreSQL: an output per instance and
profile, a delivery of each to every destination of its profile, the header stage's details in
the audit, and each instance processed; processed again, the same rows brought up to date, not
doubled (gateway.pipeline.outputs, which inserts each kind of row with one statement a batch)."""

from __future__ import annotations

import io
import time
from collections import Counter

import pytest
from pydicom import dcmread
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.config import load_config
from gateway.db import Database
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Delivery, DeliveryState, Instance, InstanceState, Output
from gateway.schema import Base
from tests.queue.test_worker_roles import SECRET, _instances, _receive

pytestmark = pytest.mark.filterwarnings("ignore")

DESTINATIONS = [
    {"name": "archive", "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 104},
    {"name": "mirror", "ae_title": "MIRROR", "host": "127.0.0.1", "port": 105},
    {"name": "research", "ae_title": "RESEARCH", "host": "127.0.0.1", "port": 106, "profile": "research"},
]


@pytest.fixture(params=["sqlite", "postgresql"])
def gateway(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres").url
    config = load_config(None, {
        "storage": {"root": str(tmp_path)},
        "database": {"url": url},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": False},
        "egress": {"destinations": DESTINATIONS},
    })
    db = Database(config.database.url)
    db.create_schema()
    yield config, db
    Base.metadata.drop_all(db.engine)  # PostgreSQL's database outlives the test
    db.dispose()


def _process(config, db) -> None:
    time.sleep(0.05)
    assert queue_stable_studies(db, config.queue, False) == 1
    assert Worker.from_config(config, db, build_pipeline(config, db, SECRET, device="cpu")).run_once()


def _changed(data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(data))
    ds.SeriesDescription = "sent again"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _rows(db):
    with db.session() as session:
        outputs = {(o.instance_id, o.profile): o.id for o in session.scalars(select(Output))}
        deliveries = Counter((d.output_id, d.destination, d.state) for d in session.scalars(select(Delivery)))
        details = Counter(e.detail["instance"] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.event == "header_detail")))
        states = [i.state for i in session.scalars(select(Instance))]
    return outputs, deliveries, details, states


def test_a_job_records_each_output_its_deliveries_and_its_audit_once(gateway):
    config, db = gateway
    for data in _instances():
        _receive(db, config, data)
    _process(config, db)

    outputs, deliveries, details, states = _rows(db)
    assert states == [InstanceState.PROCESSED] * 2
    assert sorted(profile for _, profile in outputs) == ["basic", "basic", "research", "research"]
    expected = Counter()
    for (_, profile), output_id in outputs.items():
        for destination in (["research"] if profile == "research" else ["archive", "mirror"]):
            expected[(output_id, destination, DeliveryState.PENDING)] += 1
    assert deliveries == expected
    assert len(details) == 2 and set(details.values()) == {1}  # one per instance, by its de-identified UID

    # The sender sends the study again, changed: the same rows are brought up to date.
    for data in _instances():
        _receive(db, config, _changed(data))
    _process(config, db)
    again, deliveries_again, _, states = _rows(db)
    assert states == [InstanceState.PROCESSED] * 2
    assert again == outputs
    assert deliveries_again == expected
