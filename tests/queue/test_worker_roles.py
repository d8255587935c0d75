"""Workers of different roles sharing one queue: a pixel worker cleans the pixels and hands the
job on, a header worker (with no model loaded) finishes it, and the result is the same as one
worker doing the whole job."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.audit.report import status_lines
from gateway.config import ConfigError, load_config
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.tables import Instance, InstanceState, Job, JobPhase, JobState, Output, WorkerRole
from gateway.queue.stability import queue_stable_studies

from tests.pixels.synth import make_color

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"k" * 32
STUDY = "1.2.826.0.1.3680043.8.498.7"


def _config(root: Path, pixels: bool = True):
    return load_config(None, {
        "storage": {"root": str(root)},
        "database": {"url": f"sqlite:///{root / 'gateway.db'}"},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": pixels},
    })


def _instances() -> list[bytes]:
    """Two US instances of one study, one with burned-in text, as the scanner sends them."""
    out = []
    for seed, text in ((3, True), (4, False)):
        ds = make_color("RGB", rows=240, cols=320, seed=seed, text=text).ds
        ds.StudyInstanceUID = STUDY
        ds.SeriesInstanceUID = STUDY + ".1"
        ds.SOPInstanceUID = f"{STUDY}.1.{seed}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def _receive(db: Database, config, data: bytes) -> None:
    ds = dcmread(io.BytesIO(data))
    digest = sha256_hex(data)
    path = hashed_path(config.storage.spool, digest)
    write_durably(path, data)
    header = InstanceHeader(ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID,
                            ds.SeriesInstanceUID, ds.file_meta.TransferSyntaxUID)
    with db.session() as session:
        _, _, superseded = register_instance(session, SECRET, header, path, digest, len(data), "SCANNER")
    for stale in superseded:
        Path(stale).unlink(missing_ok=True)


def _gateway(root: Path, pixels: bool = True):
    config = _config(root, pixels)
    db = Database(config.database.url)
    db.create_schema()
    for data in _instances():
        _receive(db, config, data)
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    return config, db


def _worker(config, db, role: str) -> Worker:
    pipeline = build_pipeline(config, db, SECRET, device="cpu", role=role)
    return Worker.from_config(config, db, pipeline, owner=f"{role}-worker", role=role)


def _outputs(db) -> dict[str, bytes]:
    with db.session() as session:
        return {row.anon_uid: Path(row.path).read_bytes() for row in session.scalars(select(Output))}


def _job(db) -> Job:
    with db.session() as session:
        return session.scalars(select(Job)).one()


def test_a_header_worker_loads_no_model_and_a_pixel_worker_no_header_stage(tmp_path):
    config, db = _gateway(tmp_path)
    headers = build_pipeline(config, db, SECRET, device="cpu", role=WorkerRole.HEADERS)
    pixels = build_pipeline(config, db, SECRET, device="cpu", role=WorkerRole.PIXELS)
    assert headers.instance_stages == [] and headers.profile_stages
    assert [stage.name for stage in pixels.instance_stages] == ["pixels"] and pixels.profile_stages == {}
    with pytest.raises(ConfigError):
        build_pipeline(_config(tmp_path / "off", pixels=False), db, SECRET, role=WorkerRole.PIXELS)


def test_split_workers_give_the_same_outputs_as_one_worker(tmp_path):
    config, db = _gateway(tmp_path / "split")
    header_worker = _worker(config, db, WorkerRole.HEADERS)
    pixel_worker = _worker(config, db, WorkerRole.PIXELS)

    assert not header_worker.run_once()  # the pixels have not been looked at yet
    assert pixel_worker.run_once()
    job = _job(db)
    assert (job.phase, job.state, job.lease_owner) == (JobPhase.HEADERS, JobState.PENDING, None)
    with db.session() as session:
        assert "pending by role: headers=1" in status_lines(session)
    assert _outputs(db) == {}  # nothing leaves a pixel worker: its files keep the original header
    with db.session() as session:
        cleaned = [Path(i.intermediate_path) for i in session.scalars(select(Instance))]
    assert all(p.exists() and p.is_relative_to(config.storage.intermediate) for p in cleaned)
    assert {p.stem for p in cleaned} == {sha256_hex(data) for data in _instances()}

    assert not pixel_worker.run_once()  # nothing left for it
    assert header_worker.run_once()
    split = _outputs(db)
    assert not any(p.exists() for p in cleaned)  # removed once they have served
    with db.session() as session:
        assert {i.state for i in session.scalars(select(Instance))} == {InstanceState.PROCESSED}
        events = [e.event for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert events.count("pixels_cleaned") == 1 and events.count("pixels_detail") == 2
    assert events.index("pixels_cleaned") < events.index("processed")

    config_one, db_one = _gateway(tmp_path / "one")
    assert _worker(config_one, db_one, WorkerRole.ALL).run_once()
    assert split == _outputs(db_one)
    for data in split.values():
        ds = dcmread(io.BytesIO(data))
        assert "113101" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


class _Crash(SystemExit):
    """What a killed process looks like to the code after it: nothing more runs. (Any other
    exception escaping a stage is the instance's fault, and is contained to it.)"""


def test_a_pixel_worker_that_died_halfway_leaves_only_the_rest_to_do(tmp_path):
    config, db = _gateway(tmp_path)
    dying = _worker(config, db, WorkerRole.PIXELS)
    stage = dying.pipeline.instance_stages[0]
    calls = []

    def dies_on_the_second(ds, ctx):
        calls.append(1)
        if len(calls) == 2:
            raise _Crash()
        return stage(ds, ctx)

    dying.pipeline.instance_stages[0] = dies_on_the_second
    with pytest.raises(_Crash):
        dying.run_once()
    job_id = _job(db).id
    with db.session() as session:
        assert sum(i.intermediate_path is not None for i in session.scalars(select(Instance))) == 1
        session.get(Job, job_id).state = JobState.PENDING  # its lease ran out

    calls.clear()
    dying.pipeline.instance_stages[0] = lambda ds, ctx: calls.append(1) or stage(ds, ctx)
    assert dying.run_once()
    assert len(calls) == 1  # only the instance it had not finished
    assert _worker(config, db, WorkerRole.HEADERS).run_once()
    assert len(_outputs(db)) == 2


def test_a_new_version_of_a_cleaned_instance_drops_the_old_intermediate(tmp_path):
    config, db = _gateway(tmp_path)
    assert _worker(config, db, WorkerRole.PIXELS).run_once()
    with db.session() as session:
        before = {i.id: i.intermediate_path for i in session.scalars(select(Instance))}

    new_version = dcmread(io.BytesIO(_instances()[0]))
    new_version.InstitutionName = "Corrected"
    buffer = io.BytesIO()
    new_version.save_as(buffer, enforce_file_format=True)
    _receive(db, config, buffer.getvalue())

    with db.session() as session:
        replaced = session.scalars(select(Instance).where(Instance.state == InstanceState.RECEIVED)).one()
        assert replaced.intermediate_path is None and replaced.intermediate_context is None
    assert not Path(before[replaced.id]).exists()


def test_a_header_worker_hands_back_a_job_whose_pixels_were_never_looked_at(tmp_path):
    config, db = _gateway(tmp_path, pixels=False)  # queued while the pixel stage was off
    assert _job(db).phase == JobPhase.HEADERS
    config = _config(tmp_path, pixels=True)  # then switched on
    assert _worker(config, db, WorkerRole.HEADERS).run_once()
    job = _job(db)
    assert (job.phase, job.state) == (JobPhase.PIXELS, JobState.PENDING)
    assert _outputs(db) == {}


def test_without_the_pixel_stage_header_workers_take_jobs_straight_away(tmp_path):
    config, db = _gateway(tmp_path, pixels=False)
    assert _worker(config, db, WorkerRole.HEADERS).run_once()
    assert len(_outputs(db)) == 2
