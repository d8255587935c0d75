"""The forwarder sends an outbox file's data set as it lies on disk, never decoded and encoded
again (gateway/egress/scu.py): the archive receives byte for byte what the pipeline wrote."""

from __future__ import annotations

import threading

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.uid import ExplicitVRLittleEndian
import pynetdicom.association
from pynetdicom import AE, _config, evt
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import CTImageStorage

from gateway.egress import scu
from gateway.egress.config import Destination
from tests.peers import free_port

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def archive(monkeypatch):
    """A pynetdicom SCP that keeps the data set bytes of each C-STORE as they came off the wire
    (in memory: the gateway's receiver, if one ran in this process, switched that off)."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)
    received: list[bytes] = []
    done = threading.Event()

    def store(event) -> int:
        received.append(event.request.DataSet.getvalue())
        done.set()
        return 0x0000

    ae = AE(ae_title="ARCHIVE")
    ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    yield port, received, done
    server.shutdown()


def test_the_archive_receives_the_data_set_as_it_was_written_and_never_decoded(tmp_path, archive, monkeypatch):
    port, received, done = archive
    decoded = []
    monkeypatch.setattr(pynetdicom.association, "dcmread", lambda *a, **k: decoded.append(a) or dcmread(*a, **k))
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds[0x0008103E] = DataElement(0x0008103E, "UN", b"AS WRITTEN ")  # a public element written as UN
    path = tmp_path / "outbox.dcm"
    ds.save_as(path, enforce_file_format=True)
    _, offset = split_dataset(path)
    written = path.read_bytes()[offset:]
    answers = []

    item = scu.Item(1, str(path), CTImageStorage, ExplicitVRLittleEndian)
    destination = Destination(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=port)
    scu.send(destination, "DEID_GW", [item], lambda item, ok, status: answers.append((ok, status)))

    assert answers == [(True, "0x0000")]
    assert done.wait(10)
    assert received == [written]
    assert decoded == []  # pynetdicom read no data set: the file went out in chunks as it lies
