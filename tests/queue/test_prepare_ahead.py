"""The pixel stage run on each instance as it arrives (gateway.pipeline.prepare): the study's job
then runs only the header stage, gives the same outputs as a worker doing everything, loses
nothing when a preparer dies, and never forwards what the pixel stage refuses."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from gateway.db import Database
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.prepare import Preparer
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import (
    Instance,
    InstanceState,
    Job,
    JobPhase,
    Output,
    QuarantineEntry,
    WorkerRole,
)
from gateway.rules.router import Router
from tests.queue.test_worker_roles import (
    SECRET,
    STUDY,
    _config,
    _instances,
    _outputs,
    _receive,
    _worker,
)

pytestmark = pytest.mark.filterwarnings("ignore")


def _received(root: Path, extra: list[bytes] = ()):
    config = _config(root)
    db = Database(config.database.url)
    db.create_schema()
    for data in [*_instances(), *extra]:
        _receive(db, config, data)
    time.sleep(0.02)  # quiet for longer than stable_after
    return config, db


def _preparer(config, db, owner: str) -> Preparer:
    pipeline = build_pipeline(config, db, SECRET, device="cpu", role=WorkerRole.PIXELS)
    return Preparer(db, pipeline, queue=config.queue, storage=config.storage, router=Router.from_config(config),
                    owner=owner)


def _instances_by_state(db) -> dict[str, int]:
    with db.session() as session:
        states = [i.state for i in session.scalars(select(Instance))]
    return {state: states.count(state) for state in set(states)}


def test_instances_are_prepared_before_their_study_is_quiet_and_the_job_runs_only_headers(tmp_path):
    config, db = _received(tmp_path / "ahead")
    preparer = _preparer(config, db, "preparer-1")
    preparer.claim()  # seen alive (it claimed both), then died before recording anything
    assert queue_stable_studies(db, config.queue, True) == 0  # quiet, but waits for its pixels

    preparer = _preparer(config, db, "preparer-2")
    with db.session() as session:
        for instance in session.scalars(select(Instance)):
            instance.prepare_expires_at = None  # the first one's lease ran out
    assert preparer.run_once()
    with db.session() as session:
        rows = list(session.scalars(select(Instance).order_by(Instance.id)))
        assert all(row.prepared_sha256 == row.sha256 and row.state == InstanceState.RECEIVED for row in rows)
        with_text, without_text = rows
        assert Path(with_text.prepared_path).exists()
        assert without_text.prepared_path is None  # no text: the spool file serves, byte for byte
    assert queue_stable_studies(db, config.queue, True) == 1
    with db.session() as session:
        assert session.scalars(select(Job)).one().phase == JobPhase.HEADERS

    header_worker = _worker(config, db, WorkerRole.HEADERS)  # no model loaded
    assert header_worker.run_once()
    ahead = _outputs(db)
    assert not Path(with_text.prepared_path).exists()  # removed once it has served
    assert _instances_by_state(db) == {InstanceState.PROCESSED: 2}

    config_one, db_one = _received(tmp_path / "one")  # no preparer alive: the job does it all
    assert queue_stable_studies(db_one, config_one.queue, True) == 1
    assert _worker(config_one, db_one, WorkerRole.ALL).run_once()
    assert ahead == _outputs(db_one)
    clean = dcmread(io.BytesIO(_instances()[1]))
    assert clean.PixelData in [dcmread(io.BytesIO(data)).PixelData for data in ahead.values()]


def test_an_instance_whose_preparers_keep_dying_is_left_to_the_job(tmp_path):
    config, db = _received(tmp_path)
    for attempt in range(config.queue.max_job_attempts):
        assert _preparer(config, db, f"dies-{attempt}").claim()
        with db.session() as session:
            for instance in session.scalars(select(Instance)):
                instance.prepare_expires_at = None  # killed: its lease runs out
    assert _preparer(config, db, "last").claim() == []  # left to the job, not tried again
    assert queue_stable_studies(db, config.queue, True) == 1
    with db.session() as session:
        assert session.scalars(select(Job)).one().phase == JobPhase.PIXELS
    assert _worker(config, db, WorkerRole.ALL).run_once()
    assert len(_outputs(db)) == 2 and _instances_by_state(db) == {InstanceState.PROCESSED: 2}


def _undecodable() -> bytes:
    """An instance whose pixel data is cut short: the pixel stage cannot show it clean."""
    ds = dcmread(io.BytesIO(_instances()[1]))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{STUDY}.1.99"
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_an_instance_the_pixel_stage_refuses_is_quarantined_by_the_job_and_never_forwarded(tmp_path):
    config, db = _received(tmp_path, extra=[_undecodable()])
    assert _preparer(config, db, "preparer").run_once()
    with db.session() as session:
        refused = session.scalars(select(Instance).where(Instance.sop_key.is_not(None)).order_by(Instance.id)).all()[2]
        assert refused.prepared_sha256 == refused.sha256 and refused.prepared_context is None
        assert refused.state == InstanceState.RECEIVED  # a preparer never quarantines, nor forwards
    assert queue_stable_studies(db, config.queue, True) == 1
    assert _worker(config, db, WorkerRole.ALL).run_once()
    with db.session() as session:
        refused = session.get(Instance, refused.id)
        assert refused.state == InstanceState.QUARANTINED
        assert session.scalars(select(QuarantineEntry)).one().instance_id == refused.id
        assert session.scalars(select(Output).where(Output.instance_id == refused.id)).first() is None
    assert len(_outputs(db)) == 2


def test_a_new_version_arriving_while_it_is_prepared_is_prepared_again(tmp_path):
    config, db = _received(tmp_path)
    preparer = _preparer(config, db, "preparer")
    claimed = preparer.claim()
    results = preparer._prepare(claimed)
    new_version = dcmread(io.BytesIO(_instances()[0]))
    new_version.InstitutionName = "Corrected"
    buffer = io.BytesIO()
    new_version.save_as(buffer, enforce_file_format=True)
    _receive(db, config, buffer.getvalue())
    preparer._record(claimed, results)  # too late for the replaced one: dropped, file removed
    with db.session() as session:
        replaced = session.scalars(select(Instance).order_by(Instance.id)).first()
        assert replaced.prepared_sha256 != replaced.sha256
    assert results[0][1] is not None and not Path(results[0][1]).exists()
    assert queue_stable_studies(db, config.queue, True) == 0
    assert preparer.run_once()
    assert queue_stable_studies(db, config.queue, True) == 1

