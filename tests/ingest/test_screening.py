"""A connection from an address no allow-list entry could admit is closed as soon as it is
accepted: no TLS handshake, no PDU read, no association thread; one audit row says why."""

from __future__ import annotations

import pytest
from pynetdicom import AE, _config, dimse_messages
from pynetdicom.sop_class import Verification
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.ingest import callers, refusals
from gateway.ingest.capacity import ConnectionCount
from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import start_receiver
from gateway.reactors import rejected
from gateway.storage_config import StorageConfig
from tests.peers import free_port

ELSEWHERE = ("127.0.0.2", 0)  # another loopback address, as a host on the network would be


def test_an_address_is_screened_only_when_every_entry_is_bound_to_addresses():
    bound = IngestConfig(allowed_callers=[{"ae_title": "CT1", "ip": "10.1.2.0/24"},
                                          {"ae_title": "PACS", "ip": "10.7.7.7"}])
    assert callers.admits_address(bound, "10.1.2.200") and callers.admits_address(bound, "10.7.7.7")
    assert not callers.admits_address(bound, "10.9.9.9")
    one_unbound = IngestConfig(allowed_callers=[*bound.allowed_callers, {"ae_title": "MR1"}])
    assert callers.admits_address(one_unbound, "10.9.9.9")  # its AE title decides, later
    certificate_only = IngestConfig(allowed_callers=[{"ae_title": "PACS", "cert_san": "pacs.hospital.test"}])
    assert callers.admits_address(certificate_only, "10.9.9.9")
    assert callers.admits_address(IngestConfig(allow_any_caller=True), "10.9.9.9")


@pytest.fixture
def receive(tmp_path, monkeypatch):
    """Start an in-process receiver with these allow-list entries; yields its settings, its
    database, its connection count and a function that stops it."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    started = []

    def start(entries: list[dict], host: str = "127.0.0.1"):
        ingest = IngestConfig(host=host, port=free_port(), network_timeout=5, allowed_callers=entries)
        db = Database(f"sqlite:///{tmp_path / f'gateway-{len(started)}.db'}")
        db.create_schema()
        count = ConnectionCount()
        listeners = start_receiver(ingest, StorageConfig(root=tmp_path / "var"), db, b"s" * 32, count=count)
        started.append(listeners)
        return ingest, db, count, lambda: (listeners.shutdown(), started.remove(listeners))

    yield start
    for listeners in started:
        listeners.shutdown()


def test_an_ipv4_sender_to_a_dual_stack_listener_is_matched_by_its_ipv4_address(receive):
    """On ``::`` an IPv4 peer's address reads ``::ffff:127.0.0.1``; compared as it came, it was in
    no IPv4 network, and the sender the entry names was refused."""
    ingest, db, _, _ = receive([{"ae_title": "SCANNER", "ip": "127.0.0.1"}], host="::")
    welcome = _associate(ingest.port)
    assert welcome.is_established
    welcome.release()
    assert _rejections(db) == []


def _associate(port: int, bind_address=None):
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="DEID_GATEWAY", bind_address=bind_address or ("", 0))


def test_a_connection_from_an_unlisted_address_is_closed_before_its_request_is_read(receive):
    ingest, db, count, stop = receive([{"ae_title": "SCANNER", "ip": "127.0.0.1"}])
    for _ in range(3):
        refused = _associate(ingest.port, ELSEWHERE)
        assert not refused.is_established and not rejected(refused)  # closed: no A-ASSOCIATE-RJ
    assert count.total == 0  # nothing of them holds a place under max_associations
    # The first of the minute at once; the others counted (a monitoring probe must not bury the trail).
    assert _rejections(db) == [{"reason": callers.UNLISTED_ADDRESS, "address": "127.0.0.2"}]

    welcome = _associate(ingest.port)  # from the address the entry names
    assert welcome.is_established
    assert welcome.send_c_echo().Status == 0x0000
    welcome.release()
    stop()  # the count is written as the receiver stops
    assert _rejections(db)[1:] == [{"reason": callers.UNLISTED_ADDRESS, "address": "127.0.0.2", "refusals": 2}]


def test_a_scan_from_many_addresses_writes_a_row_for_the_first_few_and_counts_the_rest(receive, monkeypatch):
    monkeypatch.setattr(refusals, "ADDRESSES_PER_MINUTE", 3)
    ingest, db, _, stop = receive([{"ae_title": "SCANNER", "ip": "127.0.0.1"}])
    for n in range(1, 11):
        assert not _associate(ingest.port, (f"127.3.0.{n}", 0)).is_established
    assert [row["address"] for row in _rejections(db)] == ["127.3.0.1", "127.3.0.2", "127.3.0.3"]
    stop()
    assert _rejections(db)[3:] == [{"reason": callers.UNLISTED_ADDRESS, "address": refusals.OTHER_ADDRESSES,
                                    "refusals": 7}]


def test_with_an_entry_bound_to_no_address_the_request_is_read_and_answered(receive):
    ingest, db, _, _ = receive([{"ae_title": "SCANNER", "ip": "127.0.0.1"}, {"ae_title": "MR1"}])
    assert rejected(_associate(ingest.port, ELSEWHERE))  # SCANNER is not allowed from there
    assert [row["reason"] for row in _rejections(db)] == [callers.ADDRESS]


def _rejections(db) -> list[dict]:
    with db.reading() as session:
        return [row.detail for row in session.scalars(
            select(AuditEvent).where(AuditEvent.event == "association_rejected").order_by(AuditEvent.id))]
