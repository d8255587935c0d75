"""Pull mode against Orthanc as the PACS (C-FIND/C-MOVE SCP, the gateway registered as a
modality): three accession numbers, one unknown; the pull is killed half-way and run again;
the archive ends with exactly the two known studies, de-identified; and the coordinator's
export maps them back to the originals, with the mapping key."""

from __future__ import annotations

import csv
import signal
import sqlite3
from io import BytesIO

import pytest
import requests
from pydicom import dcmread

from gateway.deid.mapping import generate_key
from tests.integration.conftest import destination_for
from tests.peers import ARCHIVE_PASSWORD, ARCHIVE_USER, Gateway, Orthanc, wait_for
from tests.pull.cohort import make_small_study


def _pacs(tmp_path, gateway: Gateway) -> Orthanc:
    """Orthanc as the hospital's PACS, which knows the gateway as a move destination."""
    modalities = {"gateway": [gateway.ae_title, "127.0.0.1", gateway.port]}
    return Orthanc(tmp_path / "pacs", aet="PACS", extra={"DicomModalities": modalities}).start()


def _upload(pacs: Orthanc, files) -> None:
    for path in files:
        answer = requests.post(pacs.url + "/instances", data=path.read_bytes(),
                               auth=(ARCHIVE_USER, ARCHIVE_PASSWORD), timeout=30)
        answer.raise_for_status()


def _items(gateway: Gateway) -> dict[int, str]:
    with sqlite3.connect(f"file:{gateway.workdir / 'var' / 'gateway.db'}?mode=ro", uri=True, timeout=5) as db:
        try:
            return dict(db.execute("SELECT line, state FROM pull_items").fetchall())
        except sqlite3.OperationalError:
            return {}


@pytest.fixture
def pull_site(tmp_path, archive, monkeypatch):
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    gateway = Gateway(tmp_path / "gateway", destinations=[destination_for(archive)])
    pacs = _pacs(tmp_path, gateway)
    gateway.settings = {
        "ingest": {"allowed_callers": [{"ae_title": "PACS"}]},
        "pull": {"sources": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": pacs.dicom_port}],
                 "max_concurrent": 1},
    }
    yield gateway, pacs
    gateway.stop()
    pacs.stop()


def test_a_pull_interrupted_and_resumed_ends_with_the_known_studies(pull_site, archive, tmp_path):
    gateway, pacs = pull_site
    big = make_small_study(tmp_path / "one", "ACC-PULL-1", "PID-PULL-1", instances=12)
    small = make_small_study(tmp_path / "two", "ACC-PULL-2", "PID-PULL-2", instances=2)
    _upload(pacs, big.files + small.files)
    sheet = tmp_path / "cohort.csv"
    sheet.write_text("accession_number\nACC-PULL-1\nACC-NOT-THERE\nACC-PULL-2\n")
    gateway.start()

    first = gateway.spawn("pull", str(sheet), "-q")
    wait_for(lambda: _items(gateway).get(2) not in (None, "pending") or first.poll() is not None, 60,
             interval=0.02, what="the first item to be queried")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert set(_items(gateway).values()) - {"retrieved", "not_found"}, "the pull finished before it was killed"

    again = gateway.cli("pull", str(sheet), "-q")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed" in again.stdout and "line 3: not found" in again.stdout
    assert _items(gateway) == {2: "retrieved", 3: "not_found", 4: "retrieved"}

    total = len(big.files) + len(small.files)
    wait_for(lambda: len(archive.instances()) == total, 120, what="both studies archived")
    wait_for(lambda: gateway.cli("audit", "list").stdout.count("forwarded") >= 2, 60, what="both studies forwarded")
    archived = [dcmread(BytesIO(archive.instance_file(i))) for i in archive.instances()]
    studies = {ds.StudyInstanceUID for ds in archived}
    assert len(studies) == 2 and not studies & {big.study_uid, small.study_uid}
    for orthanc_id in archive.instances():
        data = archive.instance_file(orthanc_id)
        assert not [s for s in (b"ACC-PULL", b"PID-PULL") if s in data]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in archived)

    audit = gateway.cli("audit", "list", "--event", "pull_item").stdout
    assert audit.count("pull_item") == 3
    assert audit.count('"outcome": "retrieved"') == 2 and audit.count('"outcome": "not_found"') == 1
    status = gateway.cli("pull", "--status", "--run", "1").stdout
    assert "line 3" in status and "not_found" in status
    for text in (gateway.logs(), audit, status):
        assert "ACC-PULL" not in text and "ACC-NOT-THERE" not in text

    # The coordinator maps the archive's studies back, with the mapping key.
    export = tmp_path / "links.csv"
    exported = gateway.cli("mapping", "export", str(export), "--studies")
    assert exported.returncode == 0, exported.stderr
    links = {row["deidentified_study_uid"]: row for row in csv.DictReader(export.open())}
    assert set(links) == studies
    assert {(row["study_uid"], row["accession_number"], row["patient_id"]) for row in links.values()} == {
        (big.study_uid, "ACC-PULL-1", "PID-PULL-1"), (small.study_uid, "ACC-PULL-2", "PID-PULL-2")}


def test_a_pull_by_c_get_stopped_and_resumed_and_a_query(pull_site, archive, tmp_path):
    """A PACS that cannot reach the gateway sends on the pull's own association (C-GET); a pull
    stopped with SIGTERM says so (exit 3) and the same command resumes it; a C-FIND query
    stands in for a list, and --find-only retrieves nothing."""
    gateway, pacs = pull_site
    gateway.settings["pull"]["sources"][0]["retrieve"] = "get"
    big = make_small_study(tmp_path / "one", "ACC-GET-1", "PID-GET-1", instances=12, study_date="20230102")
    small = make_small_study(tmp_path / "two", "ACC-GET-2", "PID-GET-2", instances=1, study_date="20230105")
    _upload(pacs, big.files + small.files)
    sheet = tmp_path / "cohort.csv"
    sheet.write_text("ACC-GET-1\nACC-GET-2\n")
    gateway.start()

    first = gateway.spawn("pull", str(sheet), "-q")
    wait_for(lambda: _items(gateway).get(1) not in (None, "pending") or first.poll() is not None, 60,
             interval=0.02, what="the first item to be queried")
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 3  # stopped: run it again to resume
    assert _items(gateway) != {1: "retrieved", 2: "retrieved"}
    again = gateway.cli("pull", str(sheet), "-q")
    assert again.returncode == 0 and "resumed" in again.stdout, again.stdout + again.stderr
    total = len(big.files) + len(small.files)
    wait_for(lambda: len(archive.instances()) == total, 120, what="both studies archived by C-GET")
    archived = [dcmread(BytesIO(archive.instance_file(i))) for i in archive.instances()]
    assert len({ds.StudyInstanceUID for ds in archived}) == 2
    assert {ds.PatientIdentityRemoved for ds in archived} == {"YES"}
    assert all(b"PID-GET" not in archive.instance_file(i) for i in archive.instances())

    query = ["--query", "PatientID=PID-GET-*", "--query", "StudyDate=20230101-20230103"]
    found = gateway.cli("pull", *query, "--find-only", "-q")
    assert found.returncode == 0 and "found 1" in found.stdout, found.stdout + found.stderr
    assert gateway.cli("audit", "list", "--event", "pull_item").stdout.count('"outcome": "found"') == 1
