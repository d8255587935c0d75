"""DICOM TLS into the gateway, with dcmtk's own TLS tools (BCP 195 profile) as the senders.

One gateway serves every test here: its plain listener and its TLS listener side by side (a
site migrating), client certificates required and verified against the site CA, and three
allow-list entries: SCANNER (AE title only), STORESCU, and PACS_MAIN bound to its certificate's
subject. Certificates are made at test time (trustme).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from gateway.ingest import callers
from tests.ingest.tls_pki import PACS_SUBJECT, IngestPki, make_ingest_pki
from tests.peers import ECHOSCU, Gateway, free_port, storescu, wait_for

FAST = {"pixels": {"enabled": False}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> IngestPki:
    return make_ingest_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, pki):
    tls = {"port": free_port(), "cert_file": str(pki.gateway.cert), "key_file": str(pki.gateway.key),
           "ca_file": str(pki.ca), "client_certificates": "required"}
    allowed = [{"ae_title": "SCANNER"}, {"ae_title": "STORESCU"},
               {"ae_title": "PACS_MAIN", "cert_subject": PACS_SUBJECT}]
    running = Gateway(tmp_path_factory.mktemp("gateway"),
                      settings={"ingest": {"tls": tls, "allowed_callers": allowed}, **FAST}).start()
    yield running
    running.stop()


def _echoscu(port: int, *options: str, aet: str = "SCANNER", called: str = "DEID_GW"):
    return subprocess.run([ECHOSCU, "-v", *options, "-aet", aet, "-aec", called, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=60)


def _audit(gateway: Gateway, event: str) -> list[dict]:
    db = sqlite3.connect(f"file:{gateway.workdir / 'var' / 'gateway.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT detail FROM audit_events WHERE event = ? ORDER BY id", (event,)).fetchall()
    finally:
        db.close()
    return [json.loads(detail) for (detail,) in rows]


def _audited(gateway: Gateway, event: str, predicate) -> dict:
    found = wait_for(lambda: [d for d in _audit(gateway, event) if predicate(d)], 15, what=f"an audited {event}")
    return found[-1]


def test_echoscu_and_storescu_over_mutual_tls_are_received_and_processed(gateway, pki, study):
    tls = pki.modality.dcmtk(pki.ca)
    echo = _echoscu(gateway.settings["ingest"]["tls"]["port"], *tls)
    assert echo.returncode == 0, echo.stdout + echo.stderr

    sent = storescu(gateway.settings["ingest"]["tls"]["port"], study.files[:3], "SCANNER", "DEID_GW", *tls)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.count("Received Store Response (Success)") + \
        sent.stderr.count("Received Store Response (Success)") == 3

    processed = wait_for(lambda: _audit(gateway, "processed"), 60, what="the study to be processed")
    assert sum(int(row.get("instances", 0)) for row in processed) == 3
    assert not [d for d in _audit(gateway, "tls_handshake_failed") if "certificate" in d["reason"]]


def test_plain_dicom_on_the_tls_port_fails_and_is_audited(gateway):
    plain = _echoscu(gateway.settings["ingest"]["tls"]["port"])
    assert plain.returncode != 0
    row = _audited(gateway, "tls_handshake_failed", lambda d: d["reason"].startswith("handshake failed"))
    assert row["direction"] == "ingest" and row["address"] == "127.0.0.1"
    # The plain listener beside it still serves (a site migrating).
    assert _echoscu(gateway.port).returncode == 0


def test_a_client_certificate_from_another_ca_is_rejected_and_audited(gateway, pki):
    impostor = _echoscu(gateway.settings["ingest"]["tls"]["port"], *pki.impostor.dcmtk(pki.ca), aet="PACS_MAIN")
    assert impostor.returncode != 0
    row = _audited(gateway, "tls_handshake_failed", lambda d: d["reason"].startswith("certificate not accepted"))
    assert row == {"direction": "ingest", "address": "127.0.0.1", "reason": row["reason"]}


def test_a_called_ae_title_mismatch_is_rejected_and_audited(gateway, pki):
    for port, tls in [(gateway.settings["ingest"]["tls"]["port"], pki.modality.dcmtk(pki.ca)), (gateway.port, [])]:
        wrong = _echoscu(port, *tls, called="ANYTHING")
        assert wrong.returncode != 0
        assert "Called AE Title Not Recognized" in wrong.stdout + wrong.stderr
    rows = wait_for(lambda: [d for d in _audit(gateway, "association_rejected") if d["reason"] == callers.CALLED_AE
                             ] if len(_audit(gateway, "association_rejected")) >= 2 else None, 15,
                    what="both rejections audited")
    # AE title and address only: nothing else the request carried (not the called AE title).
    assert rows[-1] == {"reason": callers.CALLED_AE, "calling_ae": "SCANNER", "address": "127.0.0.1"}
    assert "ANYTHING" not in json.dumps(_audit(gateway, "association_rejected"))


def test_an_entry_bound_to_a_subject_rejects_another_subject(gateway, pki):
    port = gateway.settings["ingest"]["tls"]["port"]
    other = _echoscu(port, *pki.modality.dcmtk(pki.ca), aet="PACS_MAIN")
    assert other.returncode != 0
    assert "Calling AE Title Not Recognized" in other.stdout + other.stderr
    _audited(gateway, "association_rejected", lambda d: d["reason"] == callers.WRONG_CERTIFICATE)

    plain = _echoscu(gateway.port, aet="PACS_MAIN")  # no certificate at all on the plain port
    assert plain.returncode != 0
    _audited(gateway, "association_rejected", lambda d: d["reason"] == callers.NO_CERTIFICATE)

    assert _echoscu(port, *pki.pacs.dcmtk(pki.ca), aet="PACS_MAIN").returncode == 0
