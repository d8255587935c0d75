"""Pull over DICOM TLS from Orthanc as the PACS (its DICOM port TLS-only, client certificates
required): the C-FIND and the C-GET go on the gateway's TLS associations, verified against the
site CA with the PACS's name; the C-MOVE comes back from the PACS, over TLS, to the gateway's
TLS listener, which holds the PACS to its certificate-bound allow-list entry. A source whose
certificate the gateway cannot verify gets nothing: the item fails as "TLS handshake failed"."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from tests.ingest.tls_pki import PACS_SAN, PACS_SUBJECT, make_ingest_pki
from tests.peers import (
    ARCHIVE_PASSWORD,
    ARCHIVE_USER,
    ORTHANC,
    Gateway,
    Orthanc,
    free_port,
    wait_for,
)
from tests.pull.cohort import make_small_study

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not ORTHANC, reason="Orthanc is not installed")]


def _db(gateway: Gateway, query: str) -> list:
    with sqlite3.connect(f"file:{gateway.workdir / 'var' / 'gateway.db'}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(query).fetchall()


@pytest.fixture
def tls_site(tmp_path):
    pki = make_ingest_pki(tmp_path / "pki")
    gateway = Gateway(tmp_path / "gateway")
    tls_port = free_port()
    pacs = Orthanc(tmp_path / "pacs", aet="PACS", extra={
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": str(pki.pacs.cert),
        "DicomTlsPrivateKey": str(pki.pacs.key),
        "DicomTlsTrustedCertificates": str(pki.ca),
        "DicomTlsRemoteCertificateRequired": True,
        "DicomModalities": {"gateway": {"AET": gateway.ae_title, "Host": "127.0.0.1", "Port": tls_port,
                                        "UseDicomTls": True}},
    }).start()
    source = {"ae_title": "PACS", "host": "127.0.0.1", "port": pacs.dicom_port}
    client = {"ca_file": str(pki.ca), "cert_file": str(pki.gateway.cert), "key_file": str(pki.gateway.key),
              "server_name": PACS_SAN}
    gateway.settings = {
        "ingest": {"tls": {"port": tls_port, "cert_file": str(pki.gateway.cert), "key_file": str(pki.gateway.key),
                           "ca_file": str(pki.ca), "client_certificates": "required"},
                   "allowed_callers": [{"ae_title": "PACS", "ip": "127.0.0.1", "cert_subject": PACS_SUBJECT}]},
        "pull": {"sources": [{"name": "pacs", **source, "tls": client},
                             {"name": "pacs-get", **source, "tls": client, "retrieve": "get"},
                             {"name": "pacs-untrusted", **source, "timeout": 5,
                              "tls": {**client, "ca_file": str(pki.gateway.cert)}}],
                 "max_concurrent": 1},
    }
    yield gateway, pacs
    gateway.stop()
    pacs.stop()


def test_a_pull_over_tls_by_move_and_by_get(tls_site, tmp_path):
    gateway, pacs = tls_site
    moved = make_small_study(tmp_path / "one", "ACC-TLS-1", "PID-TLS-1", instances=2)
    fetched = make_small_study(tmp_path / "two", "ACC-TLS-2", "PID-TLS-2", instances=1)
    for path in moved.files + fetched.files:
        requests.post(pacs.url + "/instances", data=path.read_bytes(), auth=(ARCHIVE_USER, ARCHIVE_PASSWORD),
                      timeout=30).raise_for_status()
    gateway.start()

    (tmp_path / "move.csv").write_text("ACC-TLS-1\n")
    done = gateway.cli("pull", str(tmp_path / "move.csv"), "--source", "pacs", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "get.csv").write_text("ACC-TLS-2\n")
    done = gateway.cli("pull", str(tmp_path / "get.csv"), "--source", "pacs-get", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(state for (state,) in _db(gateway, "SELECT state FROM pull_items")) == ["retrieved", "retrieved"]
    wait_for(lambda: _db(gateway, "SELECT count(*) FROM instances")[0][0] == 3, 30, what="three instances received")

    # A PACS whose certificate does not verify is not even queried.
    (tmp_path / "untrusted.csv").write_text("ACC-TLS-1\n")
    gateway.cli("pull", str(tmp_path / "untrusted.csv"), "--source", "pacs-untrusted", "--find-only", "-q")
    audit = gateway.cli("audit", "list", "--event", "pull_item").stdout
    assert audit.count('"outcome": "failed"') == 1
    assert audit.count('"reason": "TLS handshake failed"') == 1
    assert "ACC-TLS" not in audit and "ACC-TLS" not in gateway.logs()
