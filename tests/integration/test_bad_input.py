"""Malformed payloads get a failure status and a quarantine entry; the rest goes through."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config, build_context

from tests.ingest.senders import send_as_is
from tests.integration.conftest import destination_for
from tests.peers import wait_for


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) - 5000])
    return target


def _not_dicom(target: Path) -> Path:
    """Valid file meta (so a sender can address it) followed by bytes that are no dataset."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with target.open("wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta)
        f.write(b"%PDF-1.4 this is a referral letter, not an image\n" * 40)
    return target


def _send_raw(port: int, files: list[Path]) -> list[int]:
    """Send files' bytes as they are, without pynetdicom re-encoding them."""
    ae = AE(ae_title="SCANNER")
    for sop_class in {dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPClassUID for f in files}:
        ae.requested_contexts.append(build_context(sop_class, [ExplicitVRLittleEndian]))
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GW")
        assert assoc.is_established
        statuses = [assoc.send_c_store(f).Status for f in files]
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    return statuses


def test_truncated_and_non_dicom_payloads_are_refused_and_quarantined(archive, gateway_factory, study, tmp_path):
    gateway = gateway_factory([destination_for(archive)]).start()
    good = study.files[:3]
    files = [good[0], _truncated(study.files[3], tmp_path / "cut.dcm"), good[1],
             _not_dicom(tmp_path / "letter.dcm"), good[2]]

    statuses = _send_raw(gateway.port, files)

    assert statuses[0] == statuses[2] == statuses[4] == 0x0000
    assert 0xC000 <= statuses[1] <= 0xCFFF
    assert 0xC000 <= statuses[3] <= 0xCFFF
    quarantine = gateway.cli("quarantine").stdout
    assert "dataset is truncated" in quarantine
    assert quarantine.count("ingest") == 2
    assert len(list((gateway.workdir / "var" / "quarantine").rglob("*.bin"))) == 2

    wait_for(lambda: len(archive.instances()) == 3, 90, what="the good instances")


def test_a_full_disk_is_answered_with_out_of_resources(archive, gateway_factory, study):
    from tests.peers import storescu

    gateway = gateway_factory([destination_for(archive)], storage={"min_free_bytes": 2**60}).start()
    sent = storescu(gateway.port, study.files[:2])
    assert "Received Store Response (Refused: OutOfResources" in sent.stdout + sent.stderr, sent.stderr
    assert not list((gateway.workdir / "var" / "spool").rglob("*.dcm"))


def test_a_deflated_payload_that_does_not_inflate_is_refused(gateway_factory, tmp_path):
    """The deflate stream is cut short: the receiver inflates as it checks, and stops there."""
    source = Path(get_testdata_file("image_dfl.dcm"))
    cut = tmp_path / "cut-deflate.dcm"
    cut.write_bytes(source.read_bytes()[:-300])
    gateway = gateway_factory([]).start("receive")

    status = send_as_is(gateway.port, cut)

    assert status == 0xC210
    assert "deflated dataset does not inflate" in gateway.cli("quarantine").stdout
