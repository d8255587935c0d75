"""One bad instance never costs another: not in batch mode, not in a worker's job.

pydicom's own test files include instances the gateway cannot handle: one that pydicom cannot
write back (``SC_rgb_jpeg.dcm``: implicit VR elements in an explicit-VR file), one with a bad VR,
a JPEG it cannot decode, a truncated one. Each must end quarantined (or skipped, if it is not
DICOM) with a reason, and every good instance beside it must come out.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from sqlalchemy import select

from gateway.config import load_config
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Instance, InstanceState, Job, JobState

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"k" * 32
GOOD = ("CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm", "US1_J2KR.dcm")
BAD = ("SC_rgb_jpeg.dcm", "badVR.dcm", "JPEG-lossy.dcm", "MR_truncated.dcm")


def _no_study_uid(folder: Path) -> Path:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    del ds.StudyInstanceUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.99.1"
    path = folder / "no-study.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _batch(tmp_path: Path, files: list[Path], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEID_GATEWAY_SECRET": "isolation-test-key",
           "DEID_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    return subprocess.run([sys.executable, "-m", "gateway", "deid", "in", "out", "--device", "cpu",
                           "--jobs", "1", "--quiet", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _inputs(tmp_path: Path, names: tuple[str, ...]) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in names:
        paths.append(folder / name)
        paths[-1].write_bytes(Path(get_testdata_file(name)).read_bytes())
    return paths


def test_batch_mode_finishes_past_bad_files_and_writes_every_good_one(tmp_path):
    files = _inputs(tmp_path, GOOD + BAD) + [_no_study_uid(tmp_path / "in")]
    run = _batch(tmp_path, files)
    assert "Traceback" not in run.stderr
    assert run.returncode == 1  # something was quarantined
    written, rest = run.stdout.splitlines()[0].split("  not DICOM: ")
    not_dicom, quarantined = (int(n) for n in rest.split("  quarantined: "))
    assert int(written.removeprefix("written: ")) == len(sorted((tmp_path / "out").rglob("*.dcm"))) >= len(GOOD)
    assert int(written.removeprefix("written: ")) + not_dicom + quarantined == len(files)
    assert quarantined >= 3


def test_batch_mode_writes_nothing_outside_its_folder_whatever_the_uids(tmp_path):
    """With a profile that keeps UIDs, the sender's UIDs would become the path."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID = "../../../escaped"
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "x.dcm", enforce_file_format=True)
    config = tmp_path / "config.yaml"
    config.write_text("deid:\n  profiles:\n    keep:\n      options: [retain_uids]\n")
    run = _batch(tmp_path, [], "--profile", "keep", "--config", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "non-conformant UIDs, their files named by hash: 1" in run.stdout
    (written,) = [p for p in tmp_path.rglob("*.dcm") if p.parent.name != "in"]
    assert written.resolve().is_relative_to((tmp_path / "out").resolve())
    assert "escaped" not in str(written)


def test_a_profile_no_destination_uses_works_in_batch_mode(tmp_path):
    _inputs(tmp_path, ("CT_small.dcm",))
    run = _batch(tmp_path, [], "--profile", "retain-dates")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("written: 1 ")


def test_an_unknown_profile_is_a_configuration_error_not_a_quarantine(tmp_path):
    _inputs(tmp_path, ("CT_small.dcm",))
    run = _batch(tmp_path, [], "--profile", "nope")
    assert run.returncode == 2 and "unknown de-identification profile" in run.stderr


# -- the worker ---------------------------------------------------------------------------------
def _receive(db: Database, spool: Path, data: bytes, study: str, number: int) -> None:
    digest = sha256_hex(data)
    path = hashed_path(spool, digest)
    write_durably(path, data)
    header = InstanceHeader("1.2.840.10008.5.1.4.1.1.7", f"{study}.{number}", study, f"{study}.1",
                            "1.2.840.10008.1.2.1")
    with db.session() as session:
        register_instance(session, SECRET, header, path, digest, len(data), "SCANNER")


def test_a_job_with_bad_instances_processes_every_good_one(tmp_path):
    config = load_config(None, {"storage": {"root": str(tmp_path)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "queue": {"stable_after": 0.01}})
    db = Database(config.database.url)
    db.create_schema()
    study = "1.2.826.0.1.3680043.8.498.55"
    names = GOOD + BAD
    for number, name in enumerate(names, start=1):
        _receive(db, config.storage.spool, Path(get_testdata_file(name)).read_bytes(), study, number)
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, config.pixels.enabled) == 1
    worker = Worker.from_config(config, db, build_pipeline(config, db, SECRET, device="cpu"))
    assert worker.run_once()
    with db.session() as session:
        assert session.scalars(select(Job)).one().state == JobState.DONE
        states = [row.state for row in session.scalars(select(Instance).order_by(Instance.id))]
        reasons = [row.error for row in session.scalars(select(Instance).order_by(Instance.id))]
    assert states[:len(GOOD)] == [InstanceState.PROCESSED] * len(GOOD)
    assert InstanceState.QUARANTINED in states[len(GOOD):]
    assert all(reason for state, reason in zip(states, reasons) if state == InstanceState.QUARANTINED)


def test_a_profile_that_keeps_uids_is_forwarded_not_quarantined(tmp_path):
    config = load_config(None, {"storage": {"root": str(tmp_path)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "queue": {"stable_after": 0.01}, "pixels": {"enabled": False},
                                "deid": {"profile": "keep", "profiles": {"keep": {"options": ["retain_uids"]}}}})
    db = Database(config.database.url)
    db.create_schema()
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    original = dcmread(io.BytesIO(data))
    _receive(db, config.storage.spool, data, str(original.StudyInstanceUID), 1)
    time.sleep(0.02)
    queue_stable_studies(db, config.queue, config.pixels.enabled)
    Worker.from_config(config, db, build_pipeline(config, db, SECRET, device="cpu")).run_once()
    with db.session() as session:
        instance = session.scalars(select(Instance)).one()
        assert (instance.state, instance.error) == (InstanceState.PROCESSED, None)
        assert instance.anon_uid == str(original.SOPInstanceUID)
