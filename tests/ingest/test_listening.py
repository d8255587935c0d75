"""Receivers that share one listening socket: the port is bound once, and the connections go
to whichever holds fewest."""

from __future__ import annotations

import socket

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from gateway.ingest.capacity import ConnectionCount
from gateway.ingest import listening as listening_module
from gateway.ingest.listening import Listening, bind, serve


def test_a_port_is_bound_once_so_a_second_gateway_on_it_fails_to_start():
    first = bind("127.0.0.1", 0, tls=False)
    first.listen(8)
    with pytest.raises(OSError):
        bind("127.0.0.1", first.address[1], tls=False)
    first.sock.close()


def _acceptor(listening: Listening, count: ConnectionCount):
    """A receiver with a descriptor of its own on the socket, as each process has."""
    ae = AE(ae_title="DEID_GW")
    ae.add_supported_context(Verification)
    return serve(ae, Listening(listening.sock.dup(), tls=False), None, [], ae.supported_contexts, count)


def test_associations_go_to_the_receiver_that_holds_fewest(monkeypatch):
    # Long enough that a busy machine cannot make the less busy receiver miss its turn.
    monkeypatch.setattr(listening_module, "YIELD_SECONDS", 0.5)
    listening = bind("127.0.0.1", 0, tls=False)
    address = listening.address
    count = ConnectionCount(processes=2)
    servers = [_acceptor(listening, count.for_process(0)), _acceptor(listening, count.for_process(1))]
    listening.listen(8)
    requestor = AE(ae_title="SCANNER")
    requestor.add_requested_context(Verification)
    associations = [requestor.associate(*address, ae_title="DEID_GW") for _ in range(4)]
    try:
        assert all(assoc.is_established for assoc in associations)
        assert sorted(len(server.active_associations) for server in servers) == [2, 2]
    finally:
        for assoc in associations:
            assoc.release()
    servers[0].shutdown()  # closes its own descriptor, not the socket: the other goes on
    again = requestor.associate(*address, ae_title="DEID_GW")
    assert again.is_established
    again.release()
    servers[1].shutdown()
    listening.sock.close()
    with socket.socket() as probe:
        assert probe.connect_ex(address) != 0  # closed once every descriptor is
