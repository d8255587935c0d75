"""A rule picks the research project through the profile it names: the same patient, sent by
two senders whose rules name two projects, gets two pseudonyms, two accession numbers and two
sets of UIDs — nothing in one project's data joins it to the other's — while each project's
numbering and the coordinator's links stay its own."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from gateway.config import load_config
from gateway.db import Database
from gateway.deid.stage import HeaderStage
from gateway.deid.tables import DeidStudy, DeidSubject
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.ingest.validate import InstanceHeader
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.stage import InstanceContext
from gateway.pipeline.worker import Worker
from gateway.queue.intake import register_instance
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Output

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"p" * 32
PROFILES = {"cohort-a": {"options": ["retain_modified_dates"], "project": "COHORT_A"},
            "cohort-b": {"options": ["retain_modified_dates"], "project": "COHORT_B"}}
RULES = [{"name": "to-a", "match": {"calling_ae": "SITE_A"}, "profile": "cohort-a"},
         {"name": "to-b", "match": {"calling_ae": "SITE_B"}, "profile": "cohort-b"}]


def _config(root: Path, url: str, pseudonyms: str = "sequential"):
    return load_config(None, {
        "storage": {"root": str(root)},
        "database": {"url": url},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": False},
        "deid": {"profiles": PROFILES, "pseudonyms": {"method": pseudonyms, "project": "MAIN"}},
        "rules": {"ordered": RULES},
    })


def _instance(study: str, series: str) -> bytes:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID, ds.AccessionNumber = "PID-SAME-PATIENT", "ACC-SAME-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _receive(db: Database, config, data: bytes, calling_ae: str) -> None:
    ds = dcmread(io.BytesIO(data))
    digest = sha256_hex(data)
    path = hashed_path(config.storage.spool, digest)
    write_durably(path, data)
    header = InstanceHeader(ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID,
                            ds.SeriesInstanceUID, ds.file_meta.TransferSyntaxUID)
    with db.session() as session:
        register_instance(session, SECRET, header, path, digest, len(data), calling_ae, "127.0.0.1")


@pytest.mark.parametrize("method", ["sequential", "hash"])
def test_the_same_patient_in_two_projects_cannot_be_joined(tmp_path, method, database_url, db):
    """On SQLite and PostgreSQL (the subject and study-link rows of two projects)."""
    config = _config(tmp_path, database_url, method)
    study, series = generate_uid(), generate_uid()  # one study, one instance to each project
    _receive(db, config, _instance(study, series), "SITE_A")
    _receive(db, config, _instance(study, series), "SITE_B")
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, False) == 1
    worker = Worker.from_config(config, db, build_pipeline(config, db, SECRET))
    while worker.run_once():
        pass

    with db.reading() as session:
        outputs = {row.profile: dcmread(row.path) for row in session.scalars(select(Output))}
        subjects = sorted(session.execute(select(DeidSubject.project, DeidSubject.pseudonym)).all())
        links = sorted(session.scalars(select(DeidStudy.project)).all())
    a, b = outputs["cohort-a"], outputs["cohort-b"]
    assert a.PatientID != b.PatientID
    assert a.PatientID.startswith("COHORT_A-") and b.PatientID.startswith("COHORT_B-")
    if method == "sequential":
        assert (a.PatientID, b.PatientID) == ("COHORT_A-000001", "COHORT_B-000001")
    else:  # not only the prefix: the keyed hash itself differs
        assert a.PatientID.split("-", 1)[1] != b.PatientID.split("-", 1)[1]
    for keyword in ("AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "StudyDate"):
        assert a.get(keyword) != b.get(keyword), keyword
    assert [project for project, _ in subjects] == ["COHORT_A", "COHORT_B"]
    assert links == ["COHORT_A", "COHORT_B"]


def test_a_profile_without_a_project_keeps_the_gateways_namespace():
    """Outputs made before projects existed keep their pseudonyms and UIDs."""
    config = load_config(None, {"deid": {"profiles": {"own": {"project": "MAIN"}},
                                         "pseudonyms": {"method": "hash", "project": "MAIN"}}})
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    outputs = {}
    for profile in ("basic", "own"):
        copy = ds.copy()
        outputs[profile] = HeaderStage(config.deid, profile, SECRET)(copy, InstanceContext(original=ds))
    assert outputs["basic"].PatientID == outputs["own"].PatientID
    assert outputs["basic"].StudyInstanceUID == outputs["own"].StudyInstanceUID


def test_a_project_name_is_checked_when_the_configuration_loads():
    with pytest.raises(Exception, match="project"):
        load_config(None, {"deid": {"profiles": {"x": {"project": "no spaces allowed"}}}})
