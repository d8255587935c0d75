"""An address's refusals: the first of each minute recorded one by one, the rest as a count
(gateway.ingest.refusals)."""

from __future__ import annotations

from pynetdicom import AE, _config, dimse_messages
from pynetdicom.sop_class import Verification
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.ingest import refusals
from gateway.ingest.config import IngestConfig
from gateway.ingest.refusals import RefusalLedger
from gateway.ingest.scp import start_receiver
from gateway.reactors import rejected
from gateway.storage_config import StorageConfig
from gateway.web.metrics import AuditTally
from tests.peers import free_port

REJECTED = "association_rejected"
UNLISTED = "address matches no allow-list entry"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ledger(per_minute: int = 3):
    clock, written = Clock(), []
    return RefusalLedger(lambda event, detail: written.append((event, detail)), per_minute, clock), clock, written


def refuse(book: RefusalLedger, times: int, address: str = "10.0.0.7", calling_ae: str = "CT1",
           reason: str = "called AE title is not this gateway's") -> list[bool]:
    return [book.one_by_one(REJECTED, address, reason=reason, calling_ae=calling_ae) for _ in range(times)]


def test_an_address_s_first_refusals_of_a_minute_are_recorded_one_by_one_and_the_rest_counted():
    book, clock, written = ledger()
    assert refuse(book, 10) == [True] * 3 + [False] * 7
    assert written == []  # its minute is not over
    clock.now += 60
    assert refuse(book, 1) == [True]  # a new minute, and the last one's count written first
    assert written == [(REJECTED, {"reason": "called AE title is not this gateway's", "address": "10.0.0.7",
                                   "refusals": 7})]


def test_each_address_has_its_own_minute():
    book, clock, written = ledger()
    refuse(book, 5, "10.0.0.7")
    assert refuse(book, 3, "10.0.0.8") == [True] * 3


def test_a_count_is_kept_per_event_and_reason_never_per_calling_ae_title():
    book, clock, written = ledger(per_minute=0)
    refuse(book, 2, calling_ae="MADE-UP-1")
    refuse(book, 1, calling_ae="MADE-UP-2")
    refuse(book, 4, reason="calling AE title not allowed from this address")
    book.one_by_one("tls_failure", "10.0.0.7", direction="ingest", reason="handshake failed")
    clock.now += 61
    refuse(book, 1, "10.0.0.9")  # anyone's refusal writes the counts of minutes that are over
    assert sorted((event, detail["reason"], detail["refusals"]) for event, detail in written) == [
        (REJECTED, "called AE title is not this gateway's", 3),
        (REJECTED, "calling AE title not allowed from this address", 4),
        ("tls_failure", "handshake failed", 1),
    ]
    assert all("calling_ae" not in detail for _, detail in written)
    assert [detail["direction"] for event, detail in written if event == "tls_failure"] == ["ingest"]


def test_counts_not_yet_written_are_written_when_the_receiver_stops():
    book, clock, written = ledger()
    refuse(book, 5)
    book.flush()
    assert [detail["refusals"] for _, detail in written] == [2]
    book.flush()
    assert len(written) == 1  # written once


def test_refusals_from_addresses_past_those_a_minute_keeps_apart_are_counted_together(monkeypatch):
    monkeypatch.setattr(refusals, "ADDRESSES_PER_MINUTE", 4)
    book, clock, written = ledger(per_minute=1)
    firsts = [book.one_by_one(REJECTED, f"10.0.1.{n}", reason=UNLISTED) for n in range(10)]
    assert firsts == [True] * 4 + [False] * 6
    clock.now += 60
    assert book.one_by_one(REJECTED, "10.0.1.9", reason=UNLISTED)  # a new minute: kept apart again
    assert written == [(REJECTED, {"reason": UNLISTED, "address": refusals.OTHER_ADDRESSES, "refusals": 6})]


def test_the_rows_written_one_by_one_in_a_minute_are_bounded_over_all_addresses(monkeypatch):
    monkeypatch.setattr(refusals, "ONE_BY_ONE_ALL_PER_MINUTE", 5)
    book, clock, written = ledger(per_minute=3)
    firsts = [sum(refuse(book, 3, f"10.0.2.{n}")) for n in range(4)]
    assert firsts == [3, 2, 0, 0]
    book.flush()  # the others still counted under their own address
    assert sorted((detail["address"], detail["refusals"]) for _, detail in written) == [
        ("10.0.2.1", 1), ("10.0.2.2", 3), ("10.0.2.3", 3)]


def test_a_flood_from_ten_thousand_addresses_writes_few_rows_and_counts_every_refusal():
    """A sender that takes a new IPv6 address for each connection, for two minutes: without the
    bounds, each refusal was a row of its own."""
    book, clock, written = ledger(per_minute=refusals.SCREENED_ONE_BY_ONE_PER_MINUTE)
    firsts = 0
    for n in range(10_000):
        firsts += book.one_by_one(REJECTED, f"fd00::{n:x}", reason=UNLISTED)
        clock.now += 0.012
    book.flush()
    assert firsts + sum(detail["refusals"] for _, detail in written) == 10_000
    assert firsts + len(written) < 300


# -- the receiver ------------------------------------------------------------------------------
def test_a_receiver_flooded_by_a_wrong_called_ae_title_writes_a_few_rows_and_counts_every_refusal(
        tmp_path, monkeypatch):
    monkeypatch.setattr(refusals, "ONE_BY_ONE_PER_MINUTE", 3)
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    ingest = IngestConfig(host="127.0.0.1", port=free_port(), network_timeout=5,
                          allowed_callers=[{"ae_title": "SCANNER"}])
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    server = start_receiver(ingest, StorageConfig(root=tmp_path / "var"), db, b"s" * 32)
    try:
        for _ in range(8):  # a modality set up with the wrong called AE title, trying again at once
            ae = AE(ae_title="SCANNER")
            ae.add_requested_context(Verification)
            assert rejected(ae.associate("127.0.0.1", ingest.port, ae_title="NOT_THE_GATEWAY"))
        assert [detail.get("refusals") for detail in _rejections(db)] == [None] * 3
    finally:
        server.shutdown()  # the minute's count is written as the receiver stops
    rows = _rejections(db)
    assert [detail.get("refusals") for detail in rows] == [None] * 3 + [5]
    assert rows[-1] == {"reason": rows[0]["reason"], "address": "127.0.0.1", "refusals": 5}
    tally = AuditTally(db)
    tally.update()
    assert sum(tally.totals["rejected"].values()) == 8


def _rejections(db) -> list[dict]:
    with db.reading() as session:
        return [row.detail for row in session.scalars(
            select(AuditEvent).where(AuditEvent.event == "association_rejected").order_by(AuditEvent.id))]
