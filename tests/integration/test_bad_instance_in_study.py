"""One bad instance in a study costs only itself, on the network path.

A scanner's study with four of pydicom's awkward files re-labelled into it: one pydicom cannot
write back (``SC_rgb_jpeg.dcm``), one with a bad VR, a JPEG the decoders refuse, a truncated one.
Every good instance must reach the archive; every bad one that does not must be in quarantine,
refused at the door or held back by the worker, with a reason.
"""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE, _config

from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for

BAD = ("SC_rgb_jpeg.dcm", "badVR.dcm", "JPEG-lossy.dcm", "MR_truncated.dcm")
STUDY_UID_TAG = b"\x20\x00\x0d\x00"


def relabel(source: Path, study_uid: str, target: Path) -> Path:
    """The file with its StudyInstanceUID replaced in the bytes (little endian, top level, the
    element explicit or, as in ``SC_rgb_jpeg.dcm``, implicit): pydicom cannot write every one of
    these files back, which is the point of them."""
    data = source.read_bytes()
    start = data.index(STUDY_UID_TAG, 132)
    explicit = data[start + 4:start + 6] == b"UI"
    head = data[start:start + 6] if explicit else data[start:start + 4]
    size = 2 if explicit else 4
    length = int.from_bytes(data[start + len(head):start + len(head) + size], "little")
    value = study_uid.encode("ascii")
    value += b"\0" * (len(value) % 2)
    end = start + len(head) + size + length
    target.write_bytes(data[:start] + head + len(value).to_bytes(size, "little") + value + data[end:])
    return target


def send_raw(port: int, path: Path) -> None:
    """C-STORE the file's dataset bytes unparsed, as a sender with a broken encoder would."""
    meta = dcmread(path, stop_before_pixels=True).file_meta
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GW")
        assert assoc.is_established
        assoc.send_c_store(path)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked


def test_every_good_instance_arrives_and_each_bad_one_is_held_with_a_reason(archive, gateway_factory, study, tmp_path):
    gateway = gateway_factory([destination_for(archive)], queue={"stable_after": 1}).start()
    bad = [relabel(Path(get_testdata_file(name)), study.study_uid, tmp_path / f"bad-{name}") for name in BAD]
    # dcmtk cannot parse SC_rgb_jpeg.dcm or the truncated file to send them; pynetdicom sends
    # their bytes as they are.
    unparsable = [bad[0], bad[3]]
    sent = storescu(gateway.port, study.files + bad[1:3], "SCANNER", "DEID_GW", "--no-halt")
    assert (sent.stdout + sent.stderr).count("Received Store Response") == len(study.files) + 2
    for path in unparsable:
        send_raw(gateway.port, path)

    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 180, what="the study forwarded")
    archived = {archive.tags(i)["SOPInstanceUID"] for i in archive.instances()}
    assert len(archived) >= len(study.files)  # every good one (their UIDs are replaced)
    held = len(study.files) + len(bad) - len(archived)
    assert held >= 2
    listing = gateway.cli("quarantine").stdout
    reasons = [line for line in listing.splitlines() if line.strip() and not line.startswith("quarantine")]
    assert len(reasons) >= held, listing
    status = gateway.cli("status").stdout
    assert "failed studies (0)" in status
