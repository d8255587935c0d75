"""The worker asks the rules before any stage runs: a drop is audited by the rule's name and
never reaches the outbox; a route picks the profile and the destinations; batch mode drops."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.batch import deidentify_folder
from gateway.config import load_config
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Delivery, Instance, InstanceState, Output

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"r" * 32
RULES = [
    {"use": "drop-screenshots"},
    {"name": "cardiology", "match": {"calling_ae": "CARDIO"}, "profile": "research", "destinations": ["registry"]},
    {"name": "radiology", "match": {"address": "10.1.0.0/16"}, "destinations": ["archive"]},
]


def _config(root: Path, rules=RULES, url: str | None = None):
    return load_config(None, {
        "storage": {"root": str(root)},
        "database": {"url": url or f"sqlite:///{root / 'gateway.db'}"},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": False},
        "egress": {"destinations": [{"name": "archive", "ae_title": "A", "host": "h", "port": 104},
                                    {"name": "registry", "ae_title": "R", "host": "h", "port": 104}]},
        "rules": {"ordered": rules},
    })


def _instance(study: str, sc: bool = False) -> bytes:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SOPInstanceUID = study, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if sc:
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _receive(db: Database, config, data: bytes, calling_ae: str, address: str) -> str:
    ds = dcmread(io.BytesIO(data))
    digest = sha256_hex(data)
    path = hashed_path(config.storage.spool, digest)
    write_durably(path, data)
    header = InstanceHeader(ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID,
                            ds.SeriesInstanceUID, ds.file_meta.TransferSyntaxUID)
    with db.session() as session:
        register_instance(session, SECRET, header, path, digest, len(data), calling_ae, address)
    return str(path)


def test_drops_and_routes(tmp_path, database_url, db):
    """On SQLite and PostgreSQL: the dropped state, its audit row and the routes' rows."""
    config = _config(tmp_path, url=database_url)
    cardio, radiology = generate_uid(), generate_uid()
    screenshot = _receive(db, config, _instance(cardio, sc=True), "CARDIO", "10.2.0.1")
    _receive(db, config, _instance(cardio), "CARDIO", "10.2.0.1")
    _receive(db, config, _instance(radiology), "PACS", "10.1.3.4")
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, False) == 2
    worker = Worker.from_config(config, db, build_pipeline(config, db, SECRET))
    while worker.run_once():
        pass

    with db.reading() as session:
        states = sorted(session.scalars(select(Instance.state)).all())
        routes = sorted(session.execute(
            select(Output.profile, Delivery.destination).join(Delivery, Delivery.output_id == Output.id)).all())
        dropped = session.scalars(select(AuditEvent.detail).where(AuditEvent.event == "dropped")).all()
        processed = session.scalars(select(AuditEvent.detail).where(AuditEvent.event == "processed")).all()
    assert states == [InstanceState.DROPPED, InstanceState.PROCESSED, InstanceState.PROCESSED]
    assert routes == [("basic", "archive"), ("research", "registry")]
    assert [detail["rule"] for detail in dropped] == ["drop-screenshots"]
    assert not Path(screenshot).exists()  # the dropped original is not kept
    assert sorted(rule for detail in processed for rule in detail["actions"].get("rules", {})) == [
        "cardiology", "drop-screenshots", "radiology"]


def test_batch_mode_applies_drop_rules(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    study = generate_uid()
    (inputs / "a.dcm").write_bytes(_instance(study))
    (inputs / "b.dcm").write_bytes(_instance(study, sc=True))
    config = _config(tmp_path, rules=[{"use": "drop-screenshots"}])
    result = deidentify_folder(config, inputs, tmp_path / "out", progress=False)
    assert result.written == 1 and dict(result.dropped) == {"drop-screenshots": 1}
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1
