"""Broader acceptance: storage SOP classes pynetdicom does not know (a vendor's private class),
accepted only when the site says so and then de-identified like the rest; and video (MPEG-2,
MPEG-4, HEVC), accepted — chosen only when the sender offers nothing decodable — and then
quarantined with a fixed reason, never forwarded unchecked.

pynetdicom is the sender (on loopback, to the gateway's real receiver in this process); the
worker then runs the real pipeline on what arrived."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG4HP41,
    ExplicitVRLittleEndian,
    VideoEndoscopicImageStorage,
    generate_uid,
)
from pynetdicom import AE
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.config import load_config
from gateway.db import Database
from gateway.deid.private import SAFE_VALUE_VRS
from gateway.ingest.scp import start_receiver
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.stage import InstanceContext, Quarantine
from gateway.pipeline.worker import Worker
from gateway.pixels.decode import VIDEO_REASON, decode
from gateway.queue.stability import queue_stable_studies
from gateway.queue.tables import Instance, InstanceState, Output
from tests.peers import free_port

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = b"v" * 32
PRIVATE_CLASS = "1.3.12.2.1107.5.9.1"  # Siemens CSA Non-Image Storage: pynetdicom does not know it
UNKNOWN_PUBLIC_SERVICE = "1.2.840.10008.5.1.4.999.1"  # not under the storage root


@pytest.fixture
def site(tmp_path, request):
    accept, pixels = getattr(request, "param", (False, False))
    config = load_config(None, {
        "ingest": {"port": free_port(), "allow_any_caller": True, "accept_unknown_sop_classes": accept},
        "storage": {"root": str(tmp_path / "var")},
        "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "queue": {"stable_after": 0.01},
        "pixels": {"enabled": pixels, "device": "cpu"},
        "deid": {"profiles": {"basic": {"options": ["retain_safe_private"]}}},
    })
    db = Database(config.database.url)
    db.create_schema()
    listeners = start_receiver(config.ingest, config.storage, db, SECRET)
    yield config, db
    listeners.shutdown()
    db.dispose()


def _private_instance(tmp_path: Path) -> Path:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = PRIVATE_CLASS
    ds.PatientID, ds.PatientName = "PID-PRIVATE-CLASS", "SECRET^PATIENT"
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")  # safe: kept
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", b"SECRET^PATIENT" * 4)
    path = tmp_path / "private.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _video_instance(tmp_path: Path) -> Path:
    """A video endoscopy in MPEG-4 AVC (the stream itself is opaque bytes: nothing decodes it)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = VideoEndoscopicImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "PID-VIDEO", "VIDEO^PATIENT", "ES"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 64, 64, 2, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_PARTIAL_420", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\x00\x00\x00\x01" + bytes(range(256)) * 8])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "video.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _send(config, path: Path, sop_class: str, *syntaxes: str) -> tuple[int | None, str | None]:
    """C-STORE ``path`` offering ``syntaxes``: (status, the transfer syntax the gateway chose);
    (None, None) when the gateway accepted no context for the SOP class."""
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(sop_class, list(syntaxes))
    assoc = ae.associate("127.0.0.1", config.ingest.port, ae_title=config.ingest.ae_title)
    try:
        accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == sop_class]
        if not assoc.is_established or not accepted:
            return None, None
        ds = dcmread(path)
        if accepted[0].transfer_syntax[0] != ds.file_meta.TransferSyntaxUID:
            return None, accepted[0].transfer_syntax[0]
        return assoc.send_c_store(ds).Status, accepted[0].transfer_syntax[0]
    finally:
        if assoc.is_established:
            assoc.release()


def _process(config, db) -> None:
    time.sleep(0.02)
    assert queue_stable_studies(db, config.queue, False) == 1
    worker = Worker.from_config(config, db, build_pipeline(config, db, SECRET))
    while worker.run_once():
        pass


def test_a_private_sop_class_is_refused_by_default(site, tmp_path):
    config, _ = site
    assert _send(config, _private_instance(tmp_path), PRIVATE_CLASS, ExplicitVRLittleEndian) == (None, None)


@pytest.mark.parametrize("site", [(True, False), (True, True)], indirect=True, ids=["header", "pixels-and-header"])
def test_when_accepted_a_private_sop_class_is_de_identified_like_the_rest(site, tmp_path):
    """Its header by the profile; its pixel data, with the pixel stage on, checked like any image's."""
    config, db = site
    assert _send(config, _private_instance(tmp_path), PRIVATE_CLASS, ExplicitVRLittleEndian) == (
        0x0000, ExplicitVRLittleEndian)
    assert _send(config, _private_instance(tmp_path), UNKNOWN_PUBLIC_SERVICE, ExplicitVRLittleEndian) == (None, None)
    _process(config, db)
    with db.reading() as session:
        path = Path(session.scalars(select(Output.path)).one())
    out = dcmread(path)
    assert out.SOPClassUID == PRIVATE_CLASS and out.file_meta.MediaStorageSOPClassUID == PRIVATE_CLASS
    assert out.PatientID != "PID-PRIVATE-CLASS" and out.PatientIdentityRemoved == "YES"
    if config.pixels.enabled:  # the pixel stage looked at every frame and declared it clean
        assert out.BurnedInAnnotation == "NO"
        assert "113101" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert b"SECRET^PATIENT" not in path.read_bytes()
    kept = [elem for elem in out if elem.tag.is_private and elem.tag.element >= 0x1000]
    assert 1000 in [elem.value for elem in kept]  # the safe B value; the CSA header is gone
    assert {elem.VR for elem in kept} <= SAFE_VALUE_VRS  # numbers and codes only (GE's too)


@pytest.mark.parametrize("site", [(False, True), (False, False)], indirect=True, ids=["pixel-stage", "header-stage"])
def test_a_video_is_accepted_then_quarantined_with_its_reason(site, tmp_path):
    """By the pixel stage, which cannot read its frames; with that stage off, by the header stage."""
    config, db = site
    video = _video_instance(tmp_path)
    # Offered with a decodable syntax too, the gateway picks that one: nothing is lost to video.
    assert _send(config, video, VideoEndoscopicImageStorage, MPEG4HP41, ExplicitVRLittleEndian)[1] == \
        ExplicitVRLittleEndian
    assert _send(config, video, VideoEndoscopicImageStorage, MPEG4HP41) == (0x0000, MPEG4HP41)
    _process(config, db)
    with db.reading() as session:
        state = session.scalars(select(Instance.state)).one()
        outputs = session.scalars(select(Output.id)).all()
        audited = session.scalars(select(AuditEvent.detail).where(AuditEvent.event == "quarantined")).all()
    assert state == InstanceState.QUARANTINED and outputs == []
    assert [detail["reason"] for detail in audited] == [VIDEO_REASON]
    assert "VIDEO^PATIENT" not in repr(audited) and "PID-VIDEO" not in repr(audited)


def test_the_pixel_stage_names_video_rather_than_failing_to_decode(tmp_path):
    with pytest.raises(Quarantine) as raised:
        decode(dcmread(_video_instance(tmp_path)))
    assert raised.value.reason == VIDEO_REASON


def test_without_the_pixel_stage_the_header_stage_still_holds_video_back(tmp_path):
    from gateway.deid.stage import HeaderStage

    ds = dcmread(_video_instance(tmp_path))
    stage = HeaderStage(load_config().deid, "basic", SECRET)
    with pytest.raises(Quarantine, match="video"):
        stage(ds, InstanceContext(original=ds))
