"""STOW-RS ingest over HTTPS, with dicomweb-client as the sender: what is stored is spooled and
queued as a C-STORE instance would be, and everything refused leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import ssl
import stat
from pathlib import Path

import httpx
import pytest
import requests
from pydicom import dcmread
from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.ingest import refusals
from gateway.ingest import stow as ingest_stow
from gateway.ingest.validate import (
    CANNOT_UNDERSTAND,
    DATASET_DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
)
from gateway.web import stow
from tests.ingest.tls_pki import make_ingest_pki
from tests.peers import wait_for
from tests.study import FORBIDDEN, make_study
from tests.web.stow_peer import StowSite

FAILED, REFERENCED, REASON, SOP_INSTANCE = "00081198", "00081199", "00081197", "00081155"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("stow-study"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ingest_pki(tmp_path_factory.mktemp("stow-pki"))


@pytest.fixture
def site(tmp_path, pki):
    return StowSite(tmp_path, pki)


def _datasets(study, count: int):
    return [dcmread(f) for f in study.files[:count]]


def _events(site, event: str) -> list[dict]:
    with site.db.session() as session:
        return [e.detail for e in session.scalars(select(AuditEvent).where(AuditEvent.event == event))]


def _multipart(*parts: tuple[str, bytes], boundary: str = "b0undary") -> tuple[bytes, dict]:
    body = b"".join(f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode() + data + b"\r\n" for kind, data in parts)
    return body + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}


def _https(site, cert=None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(site.pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(base_url=site.url, verify=context, timeout=30)


def test_a_sender_stores_a_study_and_it_is_spooled_and_queued_as_by_c_store(site, study):
    datasets = _datasets(study, 21)  # CT, JPEG 2000, RLE cine: several transfer syntaxes
    with site.serving():
        # Small chunks: the body goes out with chunked transfer encoding, as a long study would.
        answer = site.client(chunk_size=64 * 1024).store_instances(datasets)
    assert FAILED not in answer
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == \
        sorted(str(ds.SOPInstanceUID) for ds in datasets)

    rows = site.instances()
    assert len(rows) == 21 and {row.calling_ae for row in rows} == {"PACS_WEB"}
    assert {row.calling_address for row in rows} == {"127.0.0.1"}
    for row in rows:  # in the spool, named by their hash, private, whole
        data = Path(row.spool_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256 and row.size == len(data)
        assert stat.S_IMODE(os.stat(row.spool_path).st_mode) == 0o600
        assert not any(canary in row.spool_path.encode() for canary in FORBIDDEN)
    assert site.receiving_leftovers() == []
    received = _events(site, audit.RECEIVED)
    assert sum(e["instances"] for e in received) == 21 and {e["calling_ae"] for e in received} == {"PACS_WEB"}


def test_a_resent_study_is_acknowledged_again_without_a_second_copy(site, study):
    with site.serving():
        site.client().store_instances(_datasets(study, 3))
        again = site.client().store_instances(_datasets(study, 3))
    assert len(again.ReferencedSOPSequence) == 3 and len(site.instances()) == 3
    assert sum(e["instances"] for e in _events(site, audit.RECEIVED)) == 3  # duplicates are not news


def test_a_resend_of_what_c_store_spooled_elsewhere_leaves_no_second_copy(site, study):
    """C-STORE's group commit renames a batch into the folder of its first instance, so a copy may
    live under another name than STOW-RS would give it: the row decides, not the file name."""
    with site.serving():
        site.client().store_instances(_datasets(study, 1))
        (row,) = site.instances()
        elsewhere = site.config.storage.spool / "zz" / Path(row.spool_path).name  # as a C-STORE batch put it
        elsewhere.parent.mkdir()
        os.replace(row.spool_path, elsewhere)
        with site.db.session() as session:
            session.get(type(row), row.id).spool_path = str(elsewhere)
        again = site.client().store_instances(_datasets(study, 1))
    assert len(again.ReferencedSOPSequence) == 1 and FAILED not in again
    copies = [f for f in site.config.storage.spool.rglob(f"{row.sha256}*") if "receiving" not in f.parts]
    assert copies == [elsewhere]  # no second copy of the patient's file, which nothing would ever purge
    assert site.receiving_leftovers() == []


@pytest.mark.parametrize("token", [None, "dgw_not-the-token", "mine-but-not-bearer"])
def test_without_the_senders_token_nothing_is_read_or_recorded(site, study, token):
    with site.serving():
        client = site.client(token=None if token == "mine-but-not-bearer" else token)
        if token == "mine-but-not-bearer":
            client._session.headers["Authorization"] = f"Basic {site.token}"
        with pytest.raises(requests.HTTPError) as refused:
            client.store_instances(_datasets(study, 2))
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")
    assert site.instances() == [] and site.quarantined() == [] and site.receiving_leftovers() == []
    [rejection] = _events(site, audit.REJECTED_ASSOCIATION)
    expected = stow.TOKEN_REFUSED if token == "dgw_not-the-token" else stow.NO_CREDENTIALS
    assert rejection == {"via": "stow-rs", "reason": expected, "address": "127.0.0.1"}


def test_a_sender_retrying_with_a_stale_token_writes_a_few_rows_and_a_count(site, study, monkeypatch):
    monkeypatch.setattr(refusals, "ONE_BY_ONE_PER_MINUTE", 3)
    body, headers = _multipart(("application/dicom", study.files[0].read_bytes()))
    with site.serving(graceful=True), _https(site) as client:
        for _ in range(10):
            answer = client.post("/dicomweb/studies", content=body,
                                 headers={**headers, "Authorization": "Bearer dgw_stale"})
            assert answer.status_code == 401
        assert [e.get("refusals") for e in _events(site, audit.REJECTED_ASSOCIATION)] == [None] * 3
    # The rest of the minute's, written as the console stops.
    assert _events(site, audit.REJECTED_ASSOCIATION)[3:] == [
        {"via": "stow-rs", "reason": stow.TOKEN_REFUSED, "address": "127.0.0.1", "refusals": 7}]


def test_a_console_session_is_no_credential_for_storing(site, study):
    body, headers = _multipart(("application/dicom", study.files[0].read_bytes()))
    with site.serving(), _https(site) as client:
        token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)
        login = client.post("/login", data={"username": "ada", "password": "admin-password-12", "token": token})
        assert login.status_code == 303 and client.get("/").status_code == 200  # logged in
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 401
    assert site.instances() == []


def test_oversize_parts_are_refused_with_413_and_nothing_is_recorded(tmp_path, pki, study):
    site = StowSite(tmp_path, pki, max_part_bytes=20_000)  # the CT slices are ~39 kB each
    with site.serving(), pytest.raises(requests.HTTPError) as refused:
        site.client(chunk_size=8 * 1024).store_instances(_datasets(study, 3))
    response = refused.value.response
    assert response.status_code == 413 and response.headers["content-type"] == "application/dicom+json"
    failures = response.json()[FAILED]["Value"]
    assert [f[REASON]["Value"] for f in failures] == [[OUT_OF_RESOURCES]] * 3
    assert site.instances() == [] and site.receiving_leftovers() == []
    assert not list(site.config.storage.spool.rglob("*.dcm"))
    # Refused as a C-STORE instance past ingest.max_instance_bytes is: audited, no bytes kept.
    assert [(q.reason, q.path) for q in site.quarantined()] == [(ingest_stow.TOO_LARGE, None)] * 3


def test_a_request_declaring_more_than_the_request_cap_is_refused_unread(tmp_path, pki, study):
    site = StowSite(tmp_path, pki, max_request_bytes=50_000)
    body, headers = _multipart(*[("application/dicom", f.read_bytes()) for f in study.files[:3]])
    with site.serving(), _https(site) as client:
        answer = client.post("/dicomweb/studies", content=body,
                             headers={**headers, "Authorization": f"Bearer {site.token}"})
    assert answer.status_code == 413 and site.instances() == [] and site.receiving_leftovers() == []


def test_a_request_with_too_many_parts_is_cut_off(tmp_path, pki, study):
    site = StowSite(tmp_path, pki, max_parts=2)
    with site.serving(), pytest.raises(requests.HTTPError) as refused:
        site.client().store_instances(_datasets(study, 3))
    assert refused.value.response.status_code == 413
    assert len(refused.value.response.json()[REFERENCED]["Value"]) == 2  # those before the cap are kept
    assert len(site.instances()) == 2 and site.receiving_leftovers() == []


def test_a_non_dicom_part_fails_alone_while_the_good_parts_are_stored(site, study):
    good = [f.read_bytes() for f in study.files[:2]]
    body, headers = _multipart(("application/dicom", good[0]), ("application/dicom", b"%PDF-1.4 CANARY^JOHN"),
                               ("application/octet-stream", b"PID0004711"), ("application/dicom", good[1]))
    with site.serving(), _https(site) as client:
        answer = client.post("/dicomweb/studies", content=body,
                             headers={**headers, "Authorization": f"Bearer {site.token}"})
    assert answer.status_code == 202 and answer.headers["content-type"] == "application/dicom+json"
    failures = answer.json()[FAILED]["Value"]
    assert [f[REASON]["Value"] for f in failures] == [[CANNOT_UNDERSTAND], [CANNOT_UNDERSTAND]]
    assert {item[SOP_INSTANCE]["Value"][0] for item in answer.json()[REFERENCED]["Value"]} == set(study.sop_uids[:2])
    assert len(site.instances()) == 2
    # The part that claimed to be DICOM is kept for review, as an unreadable C-STORE instance is.
    [kept] = site.quarantined()
    assert kept.reason == "file meta information is missing" and kept.calling_ae == "PACS_WEB"
    assert not any(canary in answer.content for canary in FORBIDDEN)


def test_instances_of_another_study_than_the_path_names_are_refused(site, study):
    with site.serving():
        with pytest.raises(requests.HTTPError) as refused:
            site.client().store_instances(_datasets(study, 2), study_instance_uid="1.2.3.4")
        stored = site.client().store_instances(_datasets(study, 1), study_instance_uid=study.study_uid)
    assert refused.value.response.status_code == 409
    reasons = [f[REASON]["Value"] for f in refused.value.response.json()[FAILED]["Value"]]
    assert reasons == [[DATASET_DOES_NOT_MATCH_SOP_CLASS]] * 2
    assert len(stored.ReferencedSOPSequence) == 1 and len(site.instances()) == 1


@pytest.mark.parametrize("content_type, status", [
    ("application/dicom", 415),
    ('multipart/related; type="application/dicom+json"; boundary=b0undary', 415),
    ('multipart/related; type="application/dicom"; boundary=b0undary', 400),  # body is not multipart
])
def test_other_media_types_and_malformed_bodies_are_refused(site, content_type, status):
    with site.serving(), _https(site) as client:
        answer = client.post("/dicomweb/studies", content=b"CANARY^JOHN and no boundary",
                             headers={"Content-Type": content_type, "Authorization": f"Bearer {site.token}"})
    assert answer.status_code == status and b"CANARY" not in answer.content
    assert site.instances() == [] and site.receiving_leftovers() == []


def test_a_client_certificate_authenticates_its_sender(site, study):
    body, headers = _multipart(("application/dicom", study.files[0].read_bytes()))
    with site.serving():
        with _https(site, cert=site.pki.pacs) as client:
            assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
        with _https(site, cert=site.pki.modality) as client:  # the site's CA, another subject
            assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 401
        with pytest.raises(httpx.HTTPError), _https(site, cert=site.pki.impostor) as client:
            client.post("/dicomweb/studies", content=body, headers=headers)  # another CA: no handshake
    assert [(row.calling_ae, row.calling_address) for row in site.instances()] == [("PACS_CERT", "127.0.0.1")]
    assert [e["reason"] for e in _events(site, audit.REJECTED_ASSOCIATION)] == [stow.CERTIFICATE_REFUSED]


def test_metrics_need_a_scrape_token_or_a_login(site):
    with site.serving(), _https(site) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {site.token}"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {site.scrape_token}"})
        assert scraped.status_code == 200 and "deid_gateway_queue_depth" in scraped.text
        assert client.get("/healthz").status_code == 200


def test_the_response_names_no_dataset_value(site, study):
    with site.serving():
        answer = site.client().store_instances(_datasets(study, 2))
    text = json.dumps(answer.to_json_dict()).encode()
    assert not any(canary in text for canary in FORBIDDEN)


def test_a_sender_that_goes_away_mid_part_leaves_nothing_of_that_part(site, study):
    partial = study.files[0].read_bytes() + bytes(3 * 1024 * 1024)  # past a batch: written before the end
    head = (f"POST /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {site.token}\r\n"
            'Content-Type: multipart/related; type="application/dicom"; boundary=b0undary\r\n'
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + partial
    context = ssl.create_default_context(cafile=str(site.pki.ca))
    with site.serving():
        with socket.create_connection(("127.0.0.1", site.port)) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(head + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            wait_for(site.receiving_leftovers, 10, what="the part being written")
        # The connection is gone mid-part: the part is not kept, and nothing is recorded.
        wait_for(lambda: not site.receiving_leftovers(), 10, what="the broken part's file removed")
    assert site.instances() == [] and site.quarantined() == []
