"""Instances built to strain the receiver: large, deflate bombs, images declared huge.

Each is written to a file without ever holding its bulk in memory, so the tests and the
benchmark measure the receiver, not themselves.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

MIB = 1024 * 1024
SECONDARY_CAPTURE_WORD = "1.2.840.10008.5.1.4.1.1.7.3"  # multi-frame grayscale word SC
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def _header(sop_class: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "LIMITS"
    ds.Modality = "OT"
    return ds


def _start(path: Path, ds: Dataset, transfer_syntax: str):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    f = path.open("wb")
    f.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(f, meta)
    return f


def _explicit_le(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def large_instance(path: Path, megabytes: int) -> Path:
    """An uncompressed multi-frame 512x512 16-bit image of about ``megabytes`` MiB."""
    frames = max(1, megabytes * MIB // (512 * 512 * 2))
    ds = _header(SECONDARY_CAPTURE_WORD)
    ds.update({"SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Rows": 512,
               "Columns": 512, "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15,
               "PixelRepresentation": 0})
    ds.NumberOfFrames = frames
    length = frames * 512 * 512 * 2
    with _start(path, ds, ExplicitVRLittleEndian) as f:
        f.write(_explicit_le(ds))
        f.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length))
        block = bytes(MIB)
        for _ in range(length // MIB):
            f.write(block)
        f.write(bytes(length % MIB))
    return path


def deflate_bomb(path: Path, inflated_mib: int) -> Path:
    """A deflated Encapsulated PDF whose document is ``inflated_mib`` MiB of zeros.

    A full flush makes each MiB of zeros an independent deflate block, identical to the
    last, so the file is built by repetition: 1 GiB inflated is about 1 MB on disk.
    """
    ds = _header(ENCAPSULATED_PDF)
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    body = _explicit_le(ds) + struct.pack("<HH2sHL", 0x0042, 0x0011, b"OB", 0, inflated_mib * MIB)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = deflater.compress(body) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(bytes(MIB)) + deflater.flush(zlib.Z_FULL_FLUSH)
    with _start(path, ds, DeflatedExplicitVRLittleEndian) as f:
        f.write(head)
        for _ in range(inflated_mib):
            f.write(block)
        f.write(b"\x03\x00")  # an empty final block ends the deflate stream
    return path


def declared_huge_rle(path: Path, rows: int, columns: int, frames: int = 1, samples: int = 3,
                      bits: int = 16) -> Path:
    """A tiny RLE image whose header declares ``rows`` x ``columns`` x ``frames``: a decoder
    would allocate what it declares, though each frame holds a few bytes."""
    ds = _header(CT_IMAGE)
    ds.update({"SamplesPerPixel": samples, "Rows": rows, "Columns": columns, "BitsAllocated": bits,
               "BitsStored": bits, "HighBit": bits - 1, "PixelRepresentation": 0,
               "PhotometricInterpretation": "RGB" if samples == 3 else "MONOCHROME2"})
    if samples == 3:
        ds.PlanarConfiguration = 1
    if frames > 1:
        ds.NumberOfFrames = frames
    segments = samples * bits // 8
    frame = struct.pack("<16L", segments, *[64 + 2 * i for i in range(segments)], *[0] * (15 - segments))
    frame += b"\x81\x00" * segments  # each segment: "repeat 0 128 times", then stops short
    ds.PixelData = encapsulate([frame] * frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    with _start(path, ds, RLELossless) as f:
        f.write(_explicit_le(ds))
    return path
