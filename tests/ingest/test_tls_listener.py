"""The DICOM TLS listener in this process, with pynetdicom as the sender: the handshake runs in
the connection's own thread (a silent peer stalls nobody), failures are audited, probes are not,
and certificate-bound allow-list entries decide on the verified certificate.
dcmtk's own TLS tools against the whole gateway: tests/integration/test_tls_ingest.py."""

from __future__ import annotations

import socket
import ssl
import tempfile
import time

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, dimse_messages
from pynetdicom.sop_class import Verification
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.ingest import callers
from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import start_receiver
from gateway.reactors import rejected
from gateway.storage_config import StorageConfig
from tests.ingest.tls_pki import PACS_SUBJECT, make_ingest_pki
from tests.peers import free_port, port_open, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ingest_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def receiver(tmp_path, monkeypatch, pki):
    """A TLS-only receiver (the plain listener switched off); PACS_MAIN is bound to its
    certificate's subject, SCANNER to nothing but its AE title."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ingest = IngestConfig(
        host="127.0.0.1", port=free_port(), plain_listener=False, network_timeout=5,
        tls={"port": free_port(), "cert_file": pki.gateway.cert, "key_file": pki.gateway.key,
             "ca_file": pki.ca},
        allowed_callers=[{"ae_title": "SCANNER"}, {"ae_title": "PACS_MAIN", "cert_subject": PACS_SUBJECT}])
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    server = start_receiver(ingest, StorageConfig(root=tmp_path / "var"), db, b"s" * 32)
    yield ingest, db
    server.shutdown()


def _client_context(pki, leaf) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(leaf.cert), str(leaf.key))
    return context


def _associate(ingest, context, calling="SCANNER", sop_class=Verification):
    ae = AE(ae_title=calling)
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    return ae.associate("127.0.0.1", ingest.tls.port, ae_title="DEID_GATEWAY", tls_args=(context, "localhost"))


def _audit(db) -> list[tuple[str, dict]]:
    with db.session() as session:
        return [(row.event, row.detail) for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_silent_connection_stalls_nobody_and_a_probe_is_not_audited(receiver, pki):
    ingest, db = receiver
    assert not port_open(ingest.port)  # plain_listener: false
    assert port_open(ingest.tls.port)  # connects and closes: a port check
    with socket.create_connection(("127.0.0.1", ingest.tls.port)):  # connects, says nothing
        ds = dcmread(get_testdata_file("CT_small.dcm"))
        assoc = _associate(ingest, _client_context(pki, pki.modality), sop_class=ds.SOPClassUID)
        assert assoc.is_established
        assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
    time.sleep(0.5)  # the silent connection's thread notices it closed
    assert [event for event, _ in _audit(db)] == ["received"]


def test_a_plain_client_on_the_tls_port_fails_its_handshake_and_is_audited(receiver):
    ingest, db = receiver
    with socket.create_connection(("127.0.0.1", ingest.tls.port)) as plain:
        plain.sendall(b"\x01\x00\x00\x00\x00\xcd")  # the start of an A-ASSOCIATE-RQ
        plain.settimeout(10)
        assert plain.recv(100) is not None  # the gateway's alert, or the close
    failures = wait_for(lambda: [d for e, d in _audit(db) if e == "tls_handshake_failed"], 10,
                        what="the failed handshake's audit row")
    assert failures == [{"direction": "ingest", "address": "127.0.0.1", "reason": failures[0]["reason"]}]
    assert failures[0]["reason"].startswith("handshake failed")


def test_a_certificate_bound_entry_admits_its_certificate_only(receiver, pki):
    ingest, db = receiver
    assoc = _associate(ingest, _client_context(pki, pki.pacs), calling="PACS_MAIN")
    assert assoc.is_established
    assoc.release()

    assoc = _associate(ingest, _client_context(pki, pki.modality), calling="PACS_MAIN")
    assert rejected(assoc)
    rows = [d for e, d in _audit(db) if e == "association_rejected"]
    # Nothing of the certificate presented is kept, only why it was refused.
    assert rows == [{"reason": callers.WRONG_CERTIFICATE, "calling_ae": "PACS_MAIN", "address": "127.0.0.1"}]
