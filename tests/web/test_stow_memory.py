"""A large instance over STOW-RS costs the console's process a few buffers, not its size: the
part streams to the spool as it arrives (``deid-gateway web`` in a process of its own, its peak
resident memory read from /proc)."""

from __future__ import annotations

import io
import sqlite3
import ssl
import struct

import httpx
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from gateway.web import tokens
from tests.ingest.memory import peak_rss_mib, reset_peak, rss_mib
from tests.ingest.tls_pki import make_ingest_pki
from tests.peers import Gateway, free_port, port_open, wait_for
from tests.web.helpers import add_user

ROWS = COLUMNS = 1024
FRAMES = 128  # 128 MiB of 8-bit pixels
SIZE = ROWS * COLUMNS * FRAMES
CHUNK = 1024 * 1024


def _header() -> bytes:
    """A multi-frame secondary capture's file up to its pixel data's value, which follows."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName = "OT", "LARGE^CINE"
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLUMNS, FRAMES
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue() + b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", SIZE)


def _body(boundary: str):
    yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + _header()
    zeros = bytes(CHUNK)
    for _ in range(SIZE // CHUNK):
        yield zeros
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_128_mib_instance_streams_to_the_spool_in_bounded_memory(tmp_path):
    pki = make_ingest_pki(tmp_path / "pki")
    token, token_hash = tokens.new_token()
    port = free_port()
    gateway = Gateway(tmp_path / "gateway", settings={"web": {
        "port": port, "tls_cert_file": str(pki.gateway.cert), "tls_key_file": str(pki.gateway.key),
        "stow": {"enabled": True, "senders": [{"name": "big", "calling_ae": "BIG", "token_sha256": token_hash}]}}})
    add_user(gateway, "ada", "admin", "admin-password-12")
    gateway.write_config()
    process = gateway.spawn("web")  # the console alone: no worker in the process whose memory is measured
    try:
        wait_for(lambda: port_open(port), 60, what="the console to listen")
        baseline = rss_mib(process.pid)
        reset_peak(process.pid)
        with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=120) as client:
            answer = client.post(f"https://localhost:{port}/dicomweb/studies", content=_body("bOunDary"), headers={
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=bOunDary',
                "Authorization": f"Bearer {token}"})
        peak = peak_rss_mib(process.pid)
    finally:
        gateway.stop()
    assert answer.status_code == 200, answer.text
    with sqlite3.connect(tmp_path / "gateway" / "var" / "gateway.db") as db:
        [(size,)] = db.execute("select size from instances").fetchall()
    assert size > SIZE
    assert peak - baseline < 64, f"the console grew by {peak - baseline:.0f} MiB for a {SIZE >> 20} MiB instance"
