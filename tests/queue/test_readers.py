"""Looking at the gateway never holds up receiving: a reader takes no write lock."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from gateway.audit.report import status_lines
from gateway.db import Database
from gateway.ingest.validate import InstanceHeader
from gateway.queue.intake import Intake, register_instance
from gateway.queue.tables import Instance

SECRET = b"k" * 32


def _receive(db: Database, sop: str) -> Intake:
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", sop, "1.2.3", "1.2.3.1", "1.2.840.10008.1.2.1")
    with db.session() as session:
        intake, _, _ = register_instance(session, SECRET, header, f"/spool/{sop}", sop, 10, "SCU")
    return intake


def test_an_open_status_reader_does_not_delay_an_acknowledgement(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    _receive(db, "1.2.3.1.1")
    done = threading.Event()
    writer = threading.Thread(target=lambda: (_receive(db, "1.2.3.1.2"), done.set()))
    with db.reading() as session:
        status_lines(session)  # the reader has read, and holds its snapshot open
        writer.start()
        # Under a write lock the writer would wait for this transaction to end (forever here).
        assert done.wait(10), "the intake waited for a reader"
        assert session.scalar(select(func.count(Instance.id))) == 1  # the reader's snapshot
    writer.join()
    with db.reading() as session:
        assert session.scalar(select(func.count(Instance.id))) == 2


def test_what_a_reader_writes_by_mistake_is_not_kept(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    _receive(db, "1.2.3.1.1")
    with db.reading() as session:
        session.scalars(select(Instance)).one().size = 999
    with db.reading() as session:
        assert session.scalars(select(Instance)).one().size == 10
