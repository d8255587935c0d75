"""Where a C-STORE data set lands while it arrives, with pynetdicom on both sides.

The receiver runs in this process here so that the tests can look at its receiving folder
mid-transfer; pynetdicom's process-wide settings are restored afterwards.
"""

from __future__ import annotations

import io
import stat
import tempfile
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filereader import read_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, dimse_messages
from pynetdicom.dimse_primitives import C_STORE
from sqlalchemy import select

from gateway.db import Database
from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import start_receiver
from gateway.queue.tables import Instance, QuarantineEntry
from gateway.storage_config import StorageConfig
from tests.ingest.payloads import large_instance
from tests.peers import free_port, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    """A receiver on a fresh spool; the system temporary folder is watched for strays."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", _config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    ingest = IngestConfig(host="127.0.0.1", port=free_port(), allow_any_caller=True,
                          max_instance_bytes=8 * 1024 * 1024)
    storage = StorageConfig(root=tmp_path / "var")
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_schema()
    server = start_receiver(ingest, storage, db, b"s" * 32)
    yield ingest, storage, db, system_tmp
    server.shutdown()


def _associate(port: int, sop_class: str):
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GATEWAY")
    assert assoc.is_established
    return assoc


def _body(path: Path) -> bytes:
    data = path.read_bytes()
    return data[132 + 12 + read_file_meta_info(path).FileMetaInformationGroupLength:]


def test_an_instance_streams_through_the_receiving_folder_into_the_spool(receiver):
    ingest, storage, db, system_tmp = receiver
    source = Path(get_testdata_file("CT_small.dcm"))
    ds = dcmread(source)
    assoc = _associate(ingest.port, ds.SOPClassUID)
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()

    receiving = storage.spool / "receiving"
    assert stat.S_IMODE(receiving.stat().st_mode) == 0o700
    assert list(receiving.iterdir()) == [] and list(system_tmp.iterdir()) == []
    with db.session() as session:
        spooled = Path(session.scalars(select(Instance.spool_path)).one())
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    assert dcmread(spooled).PixelData == ds.PixelData


def _send_part(assoc, path: Path, fragments: int) -> None:
    """The command and the first ``fragments`` P-DATA of a C-STORE, as a peer that then dies."""
    meta = read_file_meta_info(path)
    request = C_STORE()
    request.MessageID, request.Priority = 1, 2
    request.AffectedSOPClassUID = meta.MediaStorageSOPClassUID
    request.AffectedSOPInstanceUID = meta.MediaStorageSOPInstanceUID
    request.DataSet = io.BytesIO(_body(path))
    message = dimse_messages.C_STORE_RQ()
    message.primitive_to_message(request)
    context_id = assoc.accepted_contexts[0].context_id
    for number, pdata in enumerate(message.encode_msg(context_id, 16382)):
        if number > fragments:
            break
        assoc.dul.send_pdu(pdata)


def test_a_transfer_cut_short_leaves_nothing_behind(receiver, tmp_path):
    ingest, storage, db, system_tmp = receiver
    path = large_instance(tmp_path / "large.dcm", 4)
    assoc = _associate(ingest.port, read_file_meta_info(path).MediaStorageSOPClassUID)
    _send_part(assoc, path, fragments=50)
    receiving = storage.spool / "receiving"
    partial = wait_for(lambda: list(receiving.iterdir()), 10, what="the partial file")
    assert [p.name.startswith(".incoming-") for p in partial] == [True]
    assert stat.S_IMODE(partial[0].stat().st_mode) == 0o600
    assoc.abort()

    wait_for(lambda: not list(receiving.iterdir()), 10, what="the partial file to go")
    assert list(system_tmp.iterdir()) == []
    with db.session() as session:
        assert session.scalars(select(Instance)).all() == []


def test_an_instance_past_max_instance_bytes_is_aborted_and_quarantined_without_bytes(receiver, tmp_path):
    ingest, storage, db, _ = receiver
    path = large_instance(tmp_path / "large.dcm", 32)
    assoc = _associate(ingest.port, read_file_meta_info(path).MediaStorageSOPClassUID)
    started = time.monotonic()
    status = assoc.send_c_store(path)  # 32 MiB, in a few thousand PDUs

    assert time.monotonic() - started < 10
    assert len(status) == 0  # no response: the receiver aborted the association
    wait_for(lambda: assoc.is_aborted, 10, what="the abort")
    assert list((storage.spool / "receiving").iterdir()) == []
    with db.session() as session:
        entry = session.scalars(select(QuarantineEntry)).one()
        assert (entry.reason, entry.path) == ("instance larger than ingest.max_instance_bytes", None)
    assert not list(storage.spool.rglob("*.dcm")) and not list(storage.quarantine.rglob("*.bin"))
