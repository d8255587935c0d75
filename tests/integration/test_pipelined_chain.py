"""The chain runs as a pipeline: storescu -> ``deid-gateway serve`` -> an archive.

The pixel stage runs on each instance as it arrives, while the study is still arriving (in
processes of their own); the quiet study then needs only its header stage, and each instance
leaves as soon as it is de-identified, over several associations at once. A kill in the middle of
preparing loses nothing, and an instance the pixel stage cannot clean is never forwarded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE, AllStoragePresentationContexts, evt
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.queue.tables import Instance, InstanceState, PreparerSeen
from tests.integration.conftest import destination_for
from tests.integration.test_bad_instance_in_study import relabel, send_raw
from tests.peers import free_port, storescu, wait_for
from tests.pixels.synth import make_mono

pytestmark = pytest.mark.filterwarnings("ignore")

STUDY = "1.2.826.0.1.3680043.8.498.3701"


class CountingArchive:
    """A C-STORE SCP (pynetdicom) that keeps what it receives and the most associations it ever
    had open at once. Its first store is slow, so that deliveries queue up behind it."""

    def __init__(self):
        self.port, self.aet = free_port(), "ARCHIVE"
        self.received: dict[str, bytes] = {}
        self.open = self.most_open = 0
        self._lock = threading.Lock()
        ae = AE(ae_title=self.aet)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.maximum_associations = 8
        handlers = [(evt.EVT_C_STORE, self._store), (evt.EVT_ESTABLISHED, self._opened),
                    (evt.EVT_RELEASED, self._closed), (evt.EVT_ABORTED, self._closed)]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    def _opened(self, _event) -> None:
        with self._lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)

    def _closed(self, _event) -> None:
        with self._lock:
            self.open -= 1

    def _store(self, event) -> int:
        time.sleep(1.0 if not self.received else 0.05)
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self._lock:
            self.received[str(ds.SOPInstanceUID)] = ds.PixelData
        return 0x0000

    def destination(self) -> dict:
        return {"name": "archive", "ae_title": self.aet, "host": "127.0.0.1", "port": self.port, "associations": 2}


@pytest.fixture
def counting_archive():
    archive = CountingArchive()
    yield archive
    archive.server.shutdown()


def _ct(folder: Path, n: int, text: bool, size: int = 128) -> Path:
    ds = make_mono(bits=16, bits_stored=12, rows=size, cols=size, text=text, seed=n, modality="CT").ds
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, STUDY + ".1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[STUDY, str(n)])
    ds.PatientName, ds.PatientID = "PIPELINE^PATIENT", "PIPE-37"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{n:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _db(gateway) -> Database:
    return Database(f"sqlite:///{gateway.workdir / 'var' / 'gateway.db'}")


def _preparers_seen(db: Database) -> int:
    with db.reading() as session:
        return len(session.scalars(select(PreparerSeen)).all())


def _rows(db: Database, table) -> list:
    """Every row of ``table`` as it is now, detached from the session, to look at."""
    with db.reading() as session:
        rows = list(session.scalars(select(table).order_by(table.id)))
        session.expunge_all()
        return rows


def _instances(db: Database) -> list[Instance]:
    return _rows(db, Instance)


def _events(db: Database) -> list[AuditEvent]:
    return _rows(db, AuditEvent)


def test_pixels_are_cleaned_while_the_study_arrives_and_delivered_over_several_associations(
        counting_archive, gateway_factory, tmp_path):
    # Quiet for long enough that the study cannot be queued between the two halves.
    gateway = gateway_factory([counting_archive.destination()], pixels={"enabled": True, "device": "cpu"},
                              queue={"stable_after": 20, "scan_interval": 0.2}).start()
    db = _db(gateway)
    first = [_ct(tmp_path / "first", n, text=n == 0) for n in range(5)]
    storescu(gateway.port, first)
    wait_for(lambda: all(i.prepared_sha256 == i.sha256 for i in _instances(db)), 120,
             what="the first half prepared")
    assert not any(e.event == "stable" for e in _events(db))  # the study is still open

    second = [_ct(tmp_path / "second", n, text=False) for n in range(5, 10)]
    storescu(gateway.port, second)
    undecodable = relabel(Path(get_testdata_file("JPEG-lossy.dcm")), STUDY, tmp_path / "undecodable.dcm")
    send_raw(gateway.port, undecodable)
    wait_for(lambda: len(counting_archive.received) == 10, 120, what="every good instance archived")
    wait_for(lambda: any(e.event == "forwarded" for e in _events(db)), 30, what="the study closed")

    events = _events(db)
    stable = [e for e in events if e.event == "stable"]
    assert len(stable) == 1 and stable[0].detail["instances"] == 11  # one job, after the second half
    ahead = [e for e in events if e.event == "pixels_cleaned" and e.id < stable[0].id]
    assert sum(e.detail["instances"] for e in ahead) == 10  # every decodable one, before the job
    assert [i.state for i in _instances(db)].count(InstanceState.QUARANTINED) == 1
    assert len(counting_archive.received) == 10  # the one the pixel stage refused never left
    assert counting_archive.most_open >= 2
    clean = {dcmread(path).PixelData for path in [*first[1:], *second]}
    assert clean <= set(counting_archive.received.values())  # no text: pixel data byte for byte
    assert dcmread(first[0]).PixelData not in counting_archive.received.values()


def test_a_kill_while_instances_are_prepared_loses_none_of_them(archive, gateway_factory, tmp_path):
    gateway = gateway_factory([destination_for(archive)], pixels={"enabled": True, "device": "cpu"},
                              queue={"stable_after": 0.5, "lease_seconds": 3}).start()
    db = _db(gateway)
    files = [_ct(tmp_path / "study", n, text=n % 4 == 0, size=256) for n in range(24)]
    # Preparers load their models after the receiver listens (6 s on a busy 2-core machine); a
    # study sent before then is cleaned by its job instead, and there would be nothing to kill.
    wait_for(lambda: _preparers_seen(db), 120, what="the preparers up")
    sending = threading.Thread(target=storescu, args=(gateway.port, files))
    sending.start()
    wait_for(lambda: any(i.prepare_owner is not None for i in _instances(db)), 120, interval=0.02,
             what="a preparer at work")
    gateway.kill()  # the preparers die with it
    sending.join()
    assert any(i.prepared_sha256 != i.sha256 for i in _instances(db))  # killed halfway
    assert archive.instances() == []
    acknowledged = len(_instances(db))

    gateway.start()
    wait_for(lambda: len(archive.instances()) == acknowledged, 120, what="every instance archived after restart")
    # Whether the restarted preparers or the job finish the pixel stage depends on which starts
    # first; either way nothing is lost.
    assert {i.state for i in _instances(db)} <= {InstanceState.PROCESSED, InstanceState.DELIVERED}
