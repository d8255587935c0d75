"""Hostile and broken inputs, made reproducibly from pydicom's test files and generated instances.

``corpus(n, seed)`` returns ``n`` named byte strings, the same ones for the same seed on every
machine: each draws one seed file and one kind of damage from ``random.Random(seed + i)``. The
kinds are what a broken modality, a broken network or an attacker produces: flipped bits, cut
streams, wrong element lengths, swapped VRs, huge declared lengths and image geometries, deep
nesting, deflate bombs, bad UIDs, odd character sets, and payloads that are not DICOM at all.

The file meta group is left intact (except by ``not_dicom``), so that every input can also be
offered over the network: a C-STORE's SOP class and transfer syntax come from it.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

SEED_FILES = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "US1_J2KR.dcm", "SC_rgb.dcm",
    "SC_rgb_rle_2frame.dcm", "emri_small.dcm", "rtplan.dcm", "test-SR.dcm", "MR_small_bigendian.dcm",
    "JPEG-LL.dcm", "image_dfl.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_dcmtk.dcm",
)
ROOT = "1.2.826.0.1.3680043.8.498.77"


def generated(number: int) -> bytes:
    """A small secondary capture with text-like strokes, fixed UIDs and a fixed background."""
    rng = np.random.default_rng(number)
    pixels = rng.integers(0, 60, (96, 128), dtype=np.uint8)
    pixels[10:14, 8:90] = 250  # a bright bar where a name would be
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = f"{ROOT}.3.{number}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("generated", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{ROOT}.1", f"{ROOT}.2"
    ds.PatientName, ds.PatientID, ds.Modality = "FUZZ^PATIENT", "FUZZ0001", "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 96, 128, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return _encode(ds)


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@cache
def _seed(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def _body_start(data: bytes) -> int:
    """Where the dataset starts: after preamble, 'DICM' and the file meta group."""
    return 144 + int.from_bytes(data[140:144], "little")


def _elements(data: bytes) -> list[tuple[int, int]]:
    """(offset of the length field, its size in bytes) of top-level elements of an explicit VR
    little endian body; empty for other encodings (the damage then falls back to bit flips)."""
    start = _body_start(data)
    if b"1.2.840.10008.1.2.1\0" not in data[:start] and b"1.2.840.10008.1.2.1 " not in data[:start]:
        return []
    out = []
    try:
        for raw in data_element_generator(io.BytesIO(data[start:]), False, True, defer_size=64):
            header = 12 if raw.VR in ("OB", "OW", "OF", "SQ", "UT", "UN", "OD", "OL", "OV", "UC", "UR") else 8
            length_size = 4 if header == 12 else 2
            out.append((start + raw.value_tell - length_size, length_size))
    except Exception:  # noqa: BLE001, S112 - a seed we cannot walk gets other damage
        pass
    return out


# -- the kinds of damage: (rng, data) -> data -----------------------------------------------------
def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    start = _body_start(data)
    for _ in range(rng.randint(1, 32)):
        position = rng.randrange(start, len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(_body_start(data), len(data))]


def wrong_length(rng: random.Random, data: bytes) -> bytes:
    elements = _elements(data)
    if not elements:
        return flip_bits(rng, data)
    offset, size = rng.choice(elements)
    current = int.from_bytes(data[offset:offset + size], "little")
    limit = (1 << (8 * size)) - 1
    value = rng.choice([0, 1, current + 1, current * 7 + 3, limit - 1, limit, limit // 2])
    return data[:offset] + (value & limit).to_bytes(size, "little") + data[offset + size:]


def swap_vr(rng: random.Random, data: bytes) -> bytes:
    elements = [e for e in _elements(data) if e[1] == 2]  # short-form explicit VRs
    if not elements:
        return flip_bits(rng, data)
    offset, _ = rng.choice(elements)
    vr = rng.choice([b"SQ", b"OB", b"UN", b"US", b"FD", b"XX", b"\0\0", b"UT"])
    return data[:offset - 2] + vr + data[offset:]


def huge_geometry(rng: random.Random, data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(generated(rng.randrange(1000))))
    ds.Rows, ds.Columns = rng.choice([(20000, 20000), (65535, 65535), (1, 65535)])
    if rng.random() < 0.5:
        ds.NumberOfFrames = rng.choice([1000, 65535, 2**31 - 1])
    ds.BitsAllocated = rng.choice([8, 16, 32])
    ds.PixelData = b"\0" * rng.choice([0, 2, 1024])
    return _encode(ds)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    """Content sequences nested hundreds or thousands deep (undefined lengths), written as bytes:
    pydicom itself cannot write what it would need to recurse that deep to read."""
    ds = dcmread(io.BytesIO(generated(rng.randrange(1000))))
    del ds.PixelData  # (0040,A730) must come last, and PixelData would sort after it
    depth = rng.choice([64, 500, 5000])
    undefined = b"\xff\xff\xff\xff"
    opening = (b"\x40\x00\x30\xa7SQ\0\0" + undefined + b"\xfe\xff\x00\xe0" + undefined) * depth
    inner = b"\x08\x00\x00\x01SH\x02\x00X "
    closing = (b"\xfe\xff\x0d\xe0\0\0\0\0" + b"\xfe\xff\xdd\xe0\0\0\0\0") * depth
    return _encode(ds) + opening + inner + closing


def deflate_bomb(rng: random.Random, data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(generated(rng.randrange(1000))))
    raw = _encode(ds)
    start = _body_start(raw)
    size = rng.choice([64, 256]) * 1024 * 1024
    # An OB element (a private tag) of ``size`` zero bytes, then the real body: tiny deflated.
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = squeeze.compress(b"\x09\x00\x10\x00OB\0\0" + struct.pack("<I", size))
    zeros = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        body += squeeze.compress(zeros)
    body += squeeze.compress(raw[start:]) + squeeze.flush()
    meta = raw[:start].replace(b"1.2.840.10008.1.2.1\0", DeflatedExplicitVRLittleEndian.encode() + b"\0")
    return _remeta(meta) + body


def _remeta(meta: bytes) -> bytes:
    """Fix the file meta group length after a value in it changed length."""
    length = len(meta) - 144
    return meta[:140] + length.to_bytes(4, "little") + meta[144:]


def bad_uid(rng: random.Random, data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(generated(rng.randrange(1000))))
    keyword = rng.choice(["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
    value = rng.choice(["../../../x", "A" * 200, "", "1..2", "1.2.\0.3", "/etc/passwd", "1.2.3 4"])
    setattr(ds, keyword, value)
    if keyword == "SOPInstanceUID" and value:  # an empty one stays only in the dataset
        ds.file_meta.MediaStorageSOPInstanceUID = value
    return _encode(ds)


def odd_charset(rng: random.Random, data: bytes) -> bytes:
    ds = dcmread(io.BytesIO(generated(rng.randrange(1000))))
    ds.SpecificCharacterSet = rng.choice(["ISO_IR 999", "ISO 2022 IR 87", "GB18030", "ISO_IR 192", "\\\\"])
    out = _encode(ds)
    name = b"FUZZ^PATIENT"
    return out.replace(name, rng.choice([b"\xff\xfe\x1b$B\x80", b"\xc3\x28\xa0\xa1", b"\x1b(J\xe9"]).ljust(len(name), b" "))


def not_dicom(rng: random.Random, data: bytes) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 4096)))


KINDS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip_bits": flip_bits, "truncate": truncate, "wrong_length": wrong_length, "swap_vr": swap_vr,
    "huge_geometry": huge_geometry, "deep_nesting": deep_nesting, "deflate_bomb": deflate_bomb,
    "bad_uid": bad_uid, "odd_charset": odd_charset, "not_dicom": not_dicom,
}
#: How often each kind is drawn: the cheap byte-level damage most, the heavy builds least.
WEIGHTS = {"flip_bits": 6, "truncate": 4, "wrong_length": 6, "swap_vr": 4, "huge_geometry": 2,
           "deep_nesting": 1, "deflate_bomb": 1, "bad_uid": 2, "odd_charset": 2, "not_dicom": 1}


def corpus(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` damaged inputs, named ``<number>-<kind>-<seed file>`` (names carry no patient data)."""
    kinds = [kind for kind, weight in WEIGHTS.items() for _ in range(weight)]
    out = []
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        source = rng.choice(SEED_FILES + ("generated",))
        data = generated(i) if source == "generated" else _seed(source)
        kind = rng.choice(kinds)
        out.append((f"{i:04d}-{kind}-{source.removesuffix('.dcm')}", KINDS[kind](rng, data)))
    return out
