"""STOW-RS ingest end to end, in a gateway process: a sender pushes a study over HTTPS (with
dicomweb-client, and from Orthanc's DICOMweb plugin), the gateway de-identifies it and forwards
it to the research archive (Orthanc, over C-STORE)."""

from __future__ import annotations

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session
from pydicom import dcmread

from gateway.web import tokens
from tests.ingest.tls_pki import make_ingest_pki
from tests.peers import (
    ARCHIVE_PASSWORD,
    ARCHIVE_USER,
    DICOMWEB_PLUGIN,
    ORTHANC,
    Gateway,
    Orthanc,
    free_port,
    port_open,
    wait_for,
)
from tests.study import FORBIDDEN, IDENTITY, make_study
from tests.web.helpers import add_user

pytestmark = [pytest.mark.peers,
              pytest.mark.skipif(not ORTHANC or not DICOMWEB_PLUGIN.exists(),
                                 reason="Orthanc and its DICOMweb plugin are not installed")]

COUNT = 5  # the last instances of the study: two CT slices, JPEG 2000, an RLE cine, JPEG lossless


@pytest.fixture
def pki(tmp_path):
    return make_ingest_pki(tmp_path / "pki")


@pytest.fixture
def archive(tmp_path):
    orthanc = Orthanc(tmp_path / "archive").start()
    yield orthanc
    orthanc.stop()


@pytest.fixture
def gateway(tmp_path, pki, archive):
    """A gateway taking STOW-RS on its console's HTTPS port, forwarding to ``archive`` what a
    rule on the sender's calling AE routes there."""
    token, token_hash = tokens.new_token()
    web_port = free_port()
    gateway = Gateway(tmp_path / "gateway", destinations=[
        {"name": "archive", "ae_title": archive.aet, "host": "127.0.0.1", "port": archive.dicom_port}],
        settings={"pixels": {"enabled": False},
                  # Routing sees a STOW-RS sender by its configured calling AE: anything else is dropped.
                  "rules": {"ordered": [{"name": "from-pacs-web", "match": {"calling_ae": "PACS_WEB"},
                                         "destinations": ["archive"]}], "otherwise": "drop"},
                  "web": {"enabled": True, "port": web_port, "tls_cert_file": str(pki.gateway.cert),
                          "tls_key_file": str(pki.gateway.key),
                          "stow": {"enabled": True, "senders": [
                              {"name": "pacs-web", "calling_ae": "PACS_WEB", "token_sha256": token_hash}]}}})
    add_user(gateway, "ada", "admin", "admin-password-12")
    gateway.start()
    wait_for(lambda: port_open(web_port), 60, what="the console to listen")
    gateway.stow_url = f"https://localhost:{web_port}/dicomweb"
    gateway.token = token
    yield gateway
    gateway.stop()


def _files(tmp_path):
    study = make_study(tmp_path / "study")
    return study, study.files[16:16 + COUNT]


def _assert_de_identified(archive: Orthanc, count: int) -> None:
    wait_for(lambda: len(archive.instances()) == count, 120, what="the de-identified study in the archive")
    for orthanc_id in archive.instances():
        data = archive.instance_file(orthanc_id)
        assert not any(canary in data for canary in FORBIDDEN), "an identifier reached the archive"
        assert archive.tags(orthanc_id)["PatientName"] != IDENTITY["PatientName"]


def test_a_study_stored_with_dicomweb_client_reaches_the_archive_de_identified(tmp_path, pki, archive, gateway):
    _, files = _files(tmp_path)
    session = create_session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify (requests #3829)
    session.verify = str(pki.ca)
    client = DICOMwebClient(gateway.stow_url, session=session,
                            headers={"Authorization": f"Bearer {gateway.token}"})
    answer = client.store_instances([dcmread(f) for f in files])
    session.close()
    assert len(answer.ReferencedSOPSequence) == COUNT
    _assert_de_identified(archive, COUNT)
    received = gateway.cli("audit", "list", "--event", "received").stdout
    assert "PACS_WEB" in received and not any(c.decode() in received for c in FORBIDDEN)


def test_orthanc_forwards_a_study_to_the_gateway_over_stow_rs(tmp_path, pki, archive, gateway):
    """The hospital side is an Orthanc whose DICOMweb plugin knows the gateway as a server. Its
    HTTP client trusts the gateway's private CA through Orthanc's HttpsCACertificates option."""
    pacs = Orthanc(tmp_path / "pacs", aet="PACS", extra={
        "HttpsVerifyPeers": True,
        "HttpsCACertificates": str(pki.ca),
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": {
            "gateway": {"Url": gateway.stow_url + "/",
                        "HttpHeaders": {"Authorization": f"Bearer {gateway.token}"}}}},
    }).start()
    try:
        _, files = _files(tmp_path)
        for path in files:
            stored = requests.post(pacs.url + "/instances", data=path.read_bytes(),
                                   auth=(ARCHIVE_USER, ARCHIVE_PASSWORD), timeout=30)
            assert stored.ok, stored.text
        [orthanc_study] = pacs.get("/studies").json()
        pushed = requests.post(pacs.url + "/dicom-web/servers/gateway/stow", json={"Resources": [orthanc_study]},
                               auth=(ARCHIVE_USER, ARCHIVE_PASSWORD), timeout=120)
        assert pushed.ok, pushed.text
        _assert_de_identified(archive, COUNT)
        assert "PACS_WEB" in gateway.cli("audit", "list", "--event", "received").stdout  # came by STOW-RS
    finally:
        pacs.stop()
