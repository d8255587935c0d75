"""Every association the gateway opens or accepts sends without Nagle's delay.

With Nagle on (pynetdicom's default), each P-DATA PDU of an instance waits for the peer to
acknowledge the one before, and dcmtk peers delay their ACKs: the forwarder stalled on every
instance (see :mod:`gateway.sockets`). These tests look at the option on the real sockets of
real associations: the receiver's, the forwarder's (to dcmtk's storescp) and the pull's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, dimse_messages, transport
from pynetdicom.sop_class import CTImageStorage, Verification

from gateway.db import Database
from gateway.egress import scu
from gateway.egress.config import Destination
from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import start_receiver
from gateway.pull import dimse
from gateway.pull.config import PullSource
from gateway.storage_config import StorageConfig
from tests.peers import free_port, port_open, wait_for

STORESCP = shutil.which("storescp")
pytestmark = pytest.mark.filterwarnings("ignore")


def _no_delay(assoc) -> int:
    return assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture
def pynetdicom_settings(monkeypatch):
    """The receiver changes pynetdicom process-wide (see gateway.ingest.receiving): undo it."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    monkeypatch.setattr(transport.AssociationSocket, "recv", transport.AssociationSocket.recv)


@pytest.fixture
def storescp(tmp_path):
    if not STORESCP:
        pytest.skip("dcmtk storescp not installed")
    port = free_port()
    (tmp_path / "in").mkdir()
    process = subprocess.Popen([STORESCP, "--aetitle", "ARCHIVE", "-od", str(tmp_path / "in"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: port_open(port), 20, what="storescp to listen")
    yield port
    process.terminate()
    process.wait(10)


def test_the_receiver_accepts_associations_without_nagle(tmp_path, pynetdicom_settings):
    ingest = IngestConfig(host="127.0.0.1", port=free_port(), allow_any_caller=True)
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    listeners = start_receiver(ingest, StorageConfig(root=tmp_path / "var"), db, b"s" * 32)
    sender = AE(ae_title="SCANNER")
    sender.add_requested_context(Verification)
    assoc = sender.associate("127.0.0.1", ingest.port, ae_title=ingest.ae_title)
    try:
        assert assoc.is_established
        accepted = listeners.servers[0].active_associations
        assert [_no_delay(a) for a in accepted] == [1]
        assert _no_delay(assoc) == 0  # pynetdicom's own default, which the gateway changes
    finally:
        assoc.release()
        listeners.shutdown()


def test_the_forwarder_sends_without_nagle(storescp, monkeypatch):
    opened = []
    associate = AE.associate

    def keep(self, *args, **kwargs):
        opened.append(associate(self, *args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(AE, "associate", keep)
    seen = []

    def on_result(item, ok, status):
        seen.append((ok, _no_delay(opened[0])))

    item = scu.Item(1, get_testdata_file("CT_small.dcm"), CTImageStorage, ExplicitVRLittleEndian)
    destination = Destination(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=storescp)
    scu.send(destination, "DEID_GW", [item], on_result)

    assert seen == [(True, 1)]


def test_a_pull_association_sends_without_nagle(storescp):
    source = PullSource(name="pacs", ae_title="ARCHIVE", host="127.0.0.1", port=storescp)
    assoc = dimse._associate(source, "DEID_GW", 10, [Verification])
    try:
        assert _no_delay(assoc) == 1
    finally:
        assoc.release()
