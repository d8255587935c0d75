"""A PDU longer than the receiver accepts ends the connection before any of it is read.

pynetdicom reads each PDU whole at the length its header declares (up to 4 GiB), whatever
maximum the receiver advertised: a hostile peer could make one PDU sit in memory. The
receiver's socket now refuses such a length at the header.
"""

from __future__ import annotations

import socket
import time

import pytest
from pynetdicom import transport

from gateway.ingest.handlers import MIN_PDU_BYTES, max_pdu_bytes
from gateway.ingest.config import IngestConfig
from tests.ingest.test_receiving import receiver  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _restore_recv(monkeypatch):
    monkeypatch.setattr(transport.AssociationSocket, "recv", transport.AssociationSocket.recv)


def _closed_by_peer(sock: socket.socket, payload: int, within: float) -> bool:
    """Send up to ``payload`` bytes; whether the peer closed the connection meanwhile."""
    deadline = time.monotonic() + within
    chunk = b"\0" * 65536
    sent = 0
    try:
        while sent < payload and time.monotonic() < deadline:
            sent += sock.send(chunk)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        return sock.recv(1) == b""
    except (BrokenPipeError, ConnectionResetError):
        return True
    except TimeoutError:
        return False


def test_a_pdu_declaring_gigabytes_ends_the_connection_at_its_header(receiver):  # noqa: F811
    ingest, *_ = receiver
    with socket.create_connection(("127.0.0.1", ingest.port)) as sock:
        sock.sendall(b"\x01\x00" + (0x7FFFFFF0).to_bytes(4, "big"))  # an A-ASSOCIATE-RQ of 2 GiB
        assert _closed_by_peer(sock, payload=64 * 1024 * 1024, within=10)


def test_the_limit_follows_what_the_receiver_advertises():
    assert max_pdu_bytes(IngestConfig(max_pdu_length=16382)) == MIN_PDU_BYTES
    assert max_pdu_bytes(IngestConfig(max_pdu_length=1 << 20)) == (1 << 20) + 6
    assert max_pdu_bytes(IngestConfig(max_pdu_length=0, max_instance_bytes=5 << 20)) == 5 << 20
