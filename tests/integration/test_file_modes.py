"""The gateway started with umask 022 still writes nothing others can read: its database, WAL
and shared memory, log, spool, outbox, quarantine and kept key are 0600 in 0700 folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config, build_context

from tests.peers import storescu, wait_for


def _not_dicom(target: Path) -> Path:
    """File meta a sender can address, then bytes that are no dataset: it is quarantined."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with target.open("wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta)
        f.write(b"%PDF-1.4 a referral letter, not an image\n" * 40)
    return target


def _send_as_is(port: int, path: Path) -> None:
    ae = AE(ae_title="SCANNER")
    ae.requested_contexts = [build_context(CTImageStorage, [ExplicitVRLittleEndian])]
    previous, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GW")
        assert assoc.is_established
        assoc.send_c_store(path)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous


def test_a_gateway_started_with_umask_022_writes_only_private_files(tmp_path, gateway_factory, study):
    gateway = gateway_factory([], pixels={"enabled": False})
    gateway.secret = ""  # so that the gateway keeps its own key under storage.root
    previous = os.umask(0o022)
    try:
        gateway.start()
    finally:
        os.umask(previous)
    storescu(gateway.port, study.files[:3])
    _send_as_is(gateway.port, _not_dicom(tmp_path / "letter.dcm"))
    var = gateway.workdir / "var"
    wait_for(lambda: len(list((var / "outbox").rglob("*.dcm"))) == 3, 60, what="the outbox to fill")
    wait_for(lambda: any(p.is_file() for p in (var / "quarantine").rglob("*")), 30, what="a quarantined file")

    written = [var, *var.rglob("*"), gateway.workdir / "gateway.log"]
    names = {p.name for p in written}
    assert {"gateway.db", "gateway.db-wal", "gateway.db-shm", "gateway.log", "uid-secret"} <= names
    wrong = {str(p.relative_to(gateway.workdir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written
             if stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)}
    assert wrong == {}
