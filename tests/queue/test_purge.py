"""Retention: the scheduler deletes the spooled original and the outbox copies of an instance
once every destination has accepted it, and not before ``storage.retention_hours`` have passed
since the last of them did."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.egress import retention
from gateway.egress.retention import purge_delivered
from gateway.queue.tables import Delivery, DeliveryState, Instance, InstanceState, Output, Study, utcnow


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    database.create_schema()
    yield database
    database.dispose()


class Spool:
    """Instances with their spool file and outbox copies, and the deliveries of those copies."""

    def __init__(self, db: Database, folder: Path):
        self.db, self.folder = db, folder
        with db.session() as session:
            study = Study(study_key="k" * 64, state="forwarding")
            session.add(study)
            session.flush()
            self.study_id = study.id

    def instance(self, name: str, deliveries: list[tuple[str, str | None, float]],
                 state: str = InstanceState.PROCESSED) -> int:
        """``deliveries``: (destination, state, hours since it was accepted) per destination."""
        spooled, output_file = self.folder / f"{name}.spool", self.folder / f"{name}.out"
        spooled.write_bytes(b"original")
        output_file.write_bytes(b"copy")
        with self.db.session() as session:
            instance = Instance(study_id=self.study_id, sop_key=name.ljust(64, "0"), sop_class_uid="1.2",
                                transfer_syntax_uid="1.2.840.10008.1.2.1", spool_path=str(spooled), sha256="0" * 64,
                                size=8, state=state)
            session.add(instance)
            session.flush()
            output = Output(instance_id=instance.id, profile="default", path=str(output_file), anon_uid="2.25.1",
                            sop_class_uid="1.2", transfer_syntax_uid="1.2.840.10008.1.2.1")
            session.add(output)
            session.flush()
            for destination, delivery_state, hours_ago in deliveries:
                session.add(Delivery(output_id=output.id, study_id=self.study_id, destination=destination,
                                     state=delivery_state,
                                     delivered_at=utcnow() - timedelta(hours=hours_ago)
                                     if delivery_state == DeliveryState.SENT else None))
            return instance.id

    def files_left(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.spool"))


SENT, PENDING, FAILED = DeliveryState.SENT, DeliveryState.PENDING, DeliveryState.FAILED


def test_only_instances_every_destination_accepted_long_enough_ago_are_purged(db, tmp_path):
    spool = Spool(db, tmp_path)
    done = spool.instance("done", [("a", SENT, 30), ("b", SENT, 25)])
    spool.instance("one-pending", [("a", SENT, 30), ("b", PENDING, 0)])
    spool.instance("one-failed", [("a", SENT, 30), ("b", FAILED, 0)])
    spool.instance("too-recent", [("a", SENT, 30), ("b", SENT, 1)])
    spool.instance("no-destination", [])
    spool.instance("still-queued", [("a", SENT, 30)], state=InstanceState.QUEUED)

    assert purge_delivered(db, retention_hours=24) == 1

    assert spool.files_left() == ["no-destination", "one-failed", "one-pending", "still-queued", "too-recent"]
    assert not (tmp_path / "done.out").exists()
    with db.reading() as session:
        instance = session.get(Instance, done)
        assert (instance.state, instance.spool_path) == (InstanceState.DELIVERED, None)
        purged = session.scalars(select(AuditEvent).where(AuditEvent.event == "purged")).all()
        assert [event.detail["instances"] for event in purged] == [1]


def test_a_purged_instance_is_not_looked_at_again(db, tmp_path):
    spool = Spool(db, tmp_path)
    spool.instance("done", [("a", SENT, 1)])

    assert purge_delivered(db, retention_hours=0) == 1
    assert purge_delivered(db, retention_hours=0) == 0


def _purged_in_transactions(db, spool: Spool, due: int, monkeypatch) -> int:
    """Purge ``due`` instances all due; how many write transactions that took."""
    for n in range(due):
        spool.instance(f"done{n}", [("a", SENT, 1)])
    transactions = []
    opened = db.session
    monkeypatch.setattr(db, "session", lambda: transactions.append(1) or opened())
    assert purge_delivered(db, retention_hours=0) == due
    assert spool.files_left() == [] and not list(spool.folder.glob("*.out"))
    return len(transactions)


def test_a_pass_purges_every_instance_due_a_few_per_transaction(db, tmp_path, monkeypatch):
    monkeypatch.setattr(retention, "PURGE_CHUNK", 2)  # the write lock is held while files are deleted
    assert _purged_in_transactions(db, Spool(db, tmp_path), 5, monkeypatch) == 3  # 2 + 2 + 1
    with db.reading() as session:
        purged = session.scalars(select(AuditEvent).where(AuditEvent.event == "purged")).all()
        assert sum(event.detail["instances"] for event in purged) == 5


def test_a_transaction_stops_deleting_once_it_has_held_the_write_lock_long_enough(db, tmp_path, monkeypatch):
    """A C-STORE answer waits for the write lock while retention deletes files inside its
    transaction: past PURGE_SLICE_SECONDS the rest waits for the next one."""
    monkeypatch.setattr(retention, "PURGE_SLICE_SECONDS", 0.0)  # one instance, then the time is up
    assert _purged_in_transactions(db, Spool(db, tmp_path), 4, monkeypatch) == 4
