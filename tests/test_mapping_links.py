"""Coordinator links: a de-identified study is traced back to its Study UID, accession number
and patient with the mapping key, and not without it; imported research accession numbers are
written instead of the keyed hash."""

from __future__ import annotations

import csv

import pytest
from pydicom import dcmread
from sqlalchemy import select

from gateway.cli import main
from gateway.db import Database
from gateway.deid.mapping import generate_key
from gateway.deid.tables import DeidAccession, DeidStudy
from tests.pull.cohort import make_small_study


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "links-test-secret")
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    config = tmp_path / "config.yaml"
    config.write_text(f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n"
                      "pixels: {enabled: false}\n")
    return tmp_path, str(config)


def _deid(tmp_path, config, study) -> list:
    out = tmp_path / "out"
    assert main(["deid", str(study.files[0].parent), str(out), "-q", "-j", "1", "--config", config]) == 0
    return [dcmread(p) for p in sorted(out.rglob("*.dcm"))]


def test_a_study_is_reidentified_with_the_key_and_not_without(site, monkeypatch, capsys):
    tmp_path, config = site
    study = make_small_study(tmp_path / "in", "ACC-LINK-1", "PID-LINK-1")
    outputs = _deid(tmp_path, config, study)
    anon_uid, anon_accession = outputs[0].StudyInstanceUID, outputs[0].AccessionNumber
    assert anon_uid != study.study_uid and anon_accession != study.accession

    db = Database(f"sqlite:///{tmp_path}/g.db")
    with db.reading() as session:
        stored = session.scalars(select(DeidStudy)).all()
    db.dispose()
    assert len(stored) == 1  # one link per study and profile, originals only encrypted
    raw = (tmp_path / "g.db").read_bytes()
    assert study.study_uid.encode() not in raw and b"ACC-LINK-1" not in raw

    capsys.readouterr()
    for value in (anon_uid, anon_accession):
        assert main(["mapping", "lookup-study", value, "--config", config]) == 0
        out = capsys.readouterr().out
        assert study.study_uid in out and "ACC-LINK-1" in out and "PID-LINK-1" in out
    export = tmp_path / "studies.csv"
    assert main(["mapping", "export", str(export), "--studies", "--config", config]) == 0
    (row,) = list(csv.DictReader(export.open()))
    assert (row["deidentified_study_uid"], row["study_uid"]) == (anon_uid, study.study_uid)
    assert (row["research_accession"], row["accession_number"], row["patient_id"]) == (
        anon_accession, "ACC-LINK-1", "PID-LINK-1")

    monkeypatch.delenv("DEID_GATEWAY_MAPPING_KEY")
    capsys.readouterr()
    assert main(["mapping", "lookup-study", anon_uid, "--config", config]) == 2
    assert main(["mapping", "export", str(tmp_path / "again.csv"), "--studies", "--config", config]) == 2
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())  # the wrong key reads nothing either
    assert main(["mapping", "lookup-study", anon_uid, "--config", config]) == 2
    captured = capsys.readouterr()
    assert study.study_uid not in captured.out + captured.err
    assert not (tmp_path / "again.csv").exists()

    assert main(["audit", "list", "--event", "mapping_access", "--config", config]) == 0
    trail = capsys.readouterr().out
    assert trail.count("lookup-study") == 4 and trail.count("export-studies") == 2
    assert "ACC-LINK-1" not in trail and study.study_uid not in trail


def test_imported_research_accessions_replace_the_hash(site, capsys):
    tmp_path, config = site
    sheet = tmp_path / "cohort.csv"
    sheet.write_text("patient_id,subject,accession_number,research_accession\n"
                     "PID-IMP-1,SUBJ-7,ACC-IMP-1,RA-0001\n"
                     ",,ACC-IMP-2,RA-0001\n"  # taken by another accession: rejected
                     ",,ACC-IMP-3,THIS-IS-MUCH-TOO-LONG\n")
    assert main(["mapping", "import", str(sheet), "--config", config]) == 1
    out = capsys.readouterr().out
    assert "added 2" in out and "line 3:" in out and "line 4:" in out and "ACC-IMP" not in out

    outputs = _deid(tmp_path, config, make_small_study(tmp_path / "in", "ACC-IMP-1", "PID-IMP-1"))
    assert {(ds.AccessionNumber, ds.PatientID) for ds in outputs} == {("RA-0001", "SUBJ-7")}
    db = Database(f"sqlite:///{tmp_path}/g.db")
    with db.reading() as session:
        assert session.scalars(select(DeidAccession.pseudonym)).all() == ["RA-0001"]
    db.dispose()


def test_a_profile_that_keeps_the_originals_stores_none_of_them_in_clear(site):
    tmp_path, config = site
    with open(config, "a") as handle:
        handle.write("deid: {profile: keep, profiles: {keep: {options: [retain_uids], "
                     "overrides: {AccessionNumber: keep}}}}\n")
    study = make_small_study(tmp_path / "in", "ACC-KEEP-1", "PID-KEEP-1")
    outputs = _deid(tmp_path, config, study)
    assert outputs[0].StudyInstanceUID == study.study_uid and outputs[0].AccessionNumber == "ACC-KEEP-1"
    db = Database(f"sqlite:///{tmp_path}/g.db")
    with db.reading() as session:
        (link,) = session.execute(select(DeidStudy.anon_uid, DeidStudy.anon_accession)).all()
    db.dispose()
    assert tuple(link) == (None, None)
    raw = (tmp_path / "g.db").read_bytes()
    assert study.study_uid.encode() not in raw and b"ACC-KEEP-1" not in raw
