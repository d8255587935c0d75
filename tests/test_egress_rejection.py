"""An archive that refuses the forwarder's association is recorded as having refused it: the
reason a delivery failed ("association rejected", not "association failed") is what an operator
reads to tell a misconfigured AE title from an archive that is down."""

from __future__ import annotations

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from gateway import reactors
from gateway.egress.config import Destination
from gateway.egress.scu import Item, send
from tests.peers import free_port


@pytest.fixture
def archive():
    """An archive on a loopback port that answers only to the AE title ARCHIVE."""
    assert reactors.install()
    ae = AE(ae_title="ARCHIVE")
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    ae.add_supported_context(CTImageStorage)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    yield port
    server.shutdown()


def test_a_refused_association_fails_each_delivery_as_rejected(archive, tmp_path):
    wrong = Destination(name="archive", ae_title="NOT_ARCHIVE", host="127.0.0.1", port=archive, timeout=5)
    items = [Item(n, str(tmp_path / f"{n}.dcm"), CTImageStorage, "1.2.840.10008.1.2.1") for n in range(3)]
    for _ in range(40):  # pynetdicom alone took one in a hundred or so for a failed connect
        results = []
        send(wrong, "DEID_GATEWAY", items, lambda item, ok, reason: results.append((item.delivery_id, ok, reason)))
        assert results == [(0, False, "association rejected"), (1, False, "association rejected"),
                           (2, False, "association rejected")]


def test_an_archive_that_is_not_there_fails_each_delivery_as_failed(tmp_path):
    away = Destination(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=free_port(), timeout=2)
    results = []
    send(away, "DEID_GATEWAY", [Item(1, str(tmp_path / "1.dcm"), CTImageStorage, "1.2.840.10008.1.2.1")],
         lambda item, ok, reason: results.append((ok, reason)))
    assert results == [(False, "association failed")]
