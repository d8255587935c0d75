"""Group commit: instances arriving on concurrent associations share their waits for the disk,
and each is still durable (file, name, row) before its sender hears success; a commit that
fails is answered as a failure to every instance waiting on it, never as success.

The receiver runs in this process, on real sockets with pynetdicom as the senders; the
committer tests hold SQLite's write lock from another connection, which is how several
instances come to wait for the same batch.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, dimse_messages, transport
from sqlalchemy import func, select

from gateway.db import Database
from gateway.ingest.commit import GroupCommitter
from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import start_receiver
from gateway.ingest.validate import InstanceHeader
from gateway.queue.intake import Intake
from gateway.queue.tables import Instance
from gateway.storage_config import StorageConfig
from tests.peers import free_port, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")
SECRET = b"s" * 32
STUDY = "1.2.826.0.1.3680043.8.498.37.1"


@pytest.fixture
def pynetdicom_settings(monkeypatch):
    """The receiver changes pynetdicom process-wide (see gateway.ingest.receiving): undo it."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    monkeypatch.setattr(transport.AssociationSocket, "recv", transport.AssociationSocket.recv)


def _receiver(tmp_path: Path, database: Path):
    ingest = IngestConfig(host="127.0.0.1", port=free_port(), allow_any_caller=True, max_associations=8)
    storage = StorageConfig(root=tmp_path / "var")
    db = Database(f"sqlite:///{database}")
    db.create_schema()
    return ingest, storage, db, start_receiver(ingest, storage, db, SECRET)


def _send(port: int, uids: list[str]) -> list[int]:
    """One association sending CT_small as each of ``uids``; the status of each C-STORE."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID = STUDY
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GATEWAY")
    assert assoc.is_established
    statuses = []
    try:
        for uid in uids:
            ds.SOPInstanceUID = uid
            response = assoc.send_c_store(ds)
            statuses.append(response.Status if "Status" in response else None)
    finally:
        assoc.release()
    return statuses


def _concurrently(port: int, batches: list[list[str]]) -> list[int]:
    with ThreadPoolExecutor(len(batches)) as pool:
        return [status for statuses in pool.map(lambda uids: _send(port, uids), batches) for status in statuses]


def test_concurrent_associations_are_all_acknowledged_and_each_instance_recorded_once(
        tmp_path, pynetdicom_settings):
    ingest, storage, db, server = _receiver(tmp_path, tmp_path / "gateway.db")
    try:
        # Four associations, ten instances each, and one instance that all four send at once.
        batches = [[f"{STUDY}.{a}.{n}" for n in range(10)] + [f"{STUDY}.shared"] for a in range(4)]
        statuses = _concurrently(ingest.port, batches)
    finally:
        server.shutdown()

    assert statuses == [0x0000] * 44
    with db.session() as session:
        rows = session.execute(select(Instance.spool_path, Instance.sha256)).all()
    assert len(rows) == 41  # each instance once, the shared one included
    for path, digest in rows:  # every acknowledged instance is whole where its row says
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    spooled = {str(p) for p in storage.spool.rglob("*.dcm") if "receiving" not in p.parts}
    assert spooled == {path for path, _ in rows}  # and nothing else was kept
    assert list((storage.spool / "receiving").iterdir()) == []


def test_a_database_that_cannot_be_written_fails_every_concurrent_instance(tmp_path, pynetdicom_settings):
    ingest, storage, db, server = _receiver(tmp_path, tmp_path / "gateway.db")
    try:
        with closing(sqlite3.connect(tmp_path / "gateway.db")) as other:
            other.execute("DROP TABLE instances")  # every batch's statements now fail
            other.commit()
        statuses = _concurrently(ingest.port, [[f"{STUDY}.{a}.{n}" for n in range(5)] for a in range(4)])
    finally:
        server.shutdown()

    assert len(statuses) == 20 and 0x0000 not in statuses
    assert set(statuses) == {0x0110}  # processing failure: the sender may try again
    assert [p for p in storage.spool.rglob("*") if p.is_file()] == []  # no file kept without its row


# -- the committer on its own -----------------------------------------------------------------

def _arrival(folder: Path, n: int) -> tuple[Path, InstanceHeader, str, int]:
    data = f"instance {n}".encode()
    source = folder / f".incoming-{n}"
    source.write_bytes(data)
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.2", f"{STUDY}.{n}", STUDY, f"{STUDY}.2",
                            ExplicitVRLittleEndian)
    return source, header, hashlib.sha256(data).hexdigest(), len(data)


def _record_while_locked(committer: GroupCommitter, database: Path, folder: Path, count: int, while_locked=None):
    """Record ``count`` instances from as many threads while another connection holds the
    database's write lock, so that all but the first wait for the same batch; then let go (after
    ``while_locked(connection)``). Returns each thread's record or exception."""
    folder.mkdir(parents=True, exist_ok=True)
    results: list = [None] * count

    def record(n: int) -> None:
        try:
            results[n] = committer.record(*_arrival(folder, n), "SCANNER")
        except Exception as exc:
            results[n] = exc

    with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        threads = [threading.Thread(target=record, args=(n,)) for n in range(count)]
        threads[0].start()  # taken alone, its batch then waits for the lock
        wait_for(lambda: committer.active and committer.queued == 0, 10, interval=0.01, what="the first batch")
        for thread in threads[1:]:
            thread.start()
        wait_for(lambda: committer.queued == count - 1, 10, interval=0.01, what="instances waiting")
        if while_locked is not None:
            while_locked(lock)
        lock.execute("COMMIT")
    for thread in threads:
        thread.join(30)
    return results


def test_instances_waiting_together_share_one_commit(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    committer = GroupCommitter(db, SECRET, tmp_path / "spool")
    results = _record_while_locked(committer, tmp_path / "gateway.db", tmp_path / "receiving", 8)

    assert [r.outcome for r in results] == [Intake.NEW] * 8
    assert committer.batches == 2  # the first alone, then the seven that waited for it
    for recorded in results:
        assert Path(recorded.kept_at).parent.parent == tmp_path / "spool"
    assert len({Path(r.kept_at).parent for r in results[1:]}) == 1  # one folder synced per batch
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 8


def test_each_committed_batch_wakes_the_preparers_and_a_failed_one_does_not(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    woken = []
    committer = GroupCommitter(db, SECRET, tmp_path / "spool", on_committed=lambda: woken.append(committer.batches))
    _record_while_locked(committer, tmp_path / "gateway.db", tmp_path / "receiving", 4)
    assert woken == [1, 2]  # after each batch was recorded, never before

    _record_while_locked(committer, tmp_path / "gateway.db", tmp_path / "again", 3,
                         while_locked=lambda lock: lock.execute("DROP TABLE instances"))
    assert woken == [1, 2]


def test_a_failed_commit_answers_every_waiting_instance_with_its_error(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    committer = GroupCommitter(db, SECRET, tmp_path / "spool")
    results = _record_while_locked(committer, tmp_path / "gateway.db", tmp_path / "receiving", 8,
                                   while_locked=lambda lock: lock.execute("DROP TABLE instances"))

    assert all(isinstance(result, Exception) for result in results), results
    assert [p for p in (tmp_path / "spool").rglob("*") if p.is_file()] == []


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass  # full


def test_a_commit_on_a_full_disk_answers_every_waiting_instance_with_its_error(tmp_path, small_disk):
    database = small_disk / "gateway.db"
    db = Database(f"sqlite:///{database}")
    db.create_schema()
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next commit must grow the log
    committer = GroupCommitter(db, SECRET, tmp_path / "spool")
    results = _record_while_locked(committer, database, tmp_path / "receiving", 8,
                                   while_locked=lambda lock: _fill(small_disk))

    assert all(isinstance(result, Exception) for result in results), results
    assert [p for p in (tmp_path / "spool").rglob("*") if p.is_file()] == []
    (small_disk / "filler").unlink()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
