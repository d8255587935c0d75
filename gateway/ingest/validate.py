"""Checks that a received C-STORE data set, as a file, is a complete and understandable instance.

The file is what pynetdicom wrote while the data set arrived: preamble, the file meta it built
from the request and the presentation context, then the data set as sent. It is read once,
front to back, by the strict structure walk (:mod:`gateway.ingest.structure`), which keeps
only the header facts the queue needs; pixel data is never loaded. Then the header is checked
against the request, and the image it declares against the configured caps. Reasons never
quote values from the data set.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from gateway.ingest.config import IngestConfig
from gateway.ingest.geometry import (
    declared_frames,
    declared_pixel_bytes,
    native_pixel_bytes,
)
from gateway.ingest.structure import (
    DoesNotInflate,
    FileSource,
    InflateLimit,
    InflatingSource,
    Malformed,
    Structure,
    Truncated,
    walk,
)

# C-STORE failure statuses (PS3.4 Annex B.2.3 and PS3.7 Annex C).
CANNOT_UNDERSTAND = 0xC210
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
# "Refused: out of resources" for an instance well formed but larger than this gateway is
# configured to handle (inflated size, declared image, frame count), as for
# ingest.max_instance_bytes: the sender learns that the instance, not its encoding, is the
# problem, and 0xC210 ("cannot understand") would misreport a valid instance as corrupt.
OUT_OF_RESOURCES = 0xA700

PIXEL_DATA = 0x7FE00010
MAX_META_BYTES = 64 * 1024  # pynetdicom writes a few hundred bytes; anything larger is not meta
TRANSFER_SYNTAX_UID = 0x00020010
HEADER_TAGS = frozenset({
    0x00080005,  # SpecificCharacterSet
    0x00080016, 0x00080018, 0x0020000D, 0x0020000E,  # SOP class/instance, study, series UIDs
    0x00280002, 0x00280004, 0x00280008,  # SamplesPerPixel, PhotometricInterpretation, frames
    0x00280010, 0x00280011, 0x00280100,  # Rows, Columns, BitsAllocated
})
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
NO_FILE_META = "file meta information is missing"  # no preamble and "DICM": not a DICOM file


class InvalidInstance(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class InstanceHeader:
    """The few facts the queue needs; values stay in memory, never in logs."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str


def validate_file(
    path: Path, sop_class_uid: str | None, sop_instance_uid: str | None, ingest: IngestConfig
) -> InstanceHeader:
    """Check a received file (preamble + file meta + data set) and return its header facts.

    ``sop_class_uid`` and ``sop_instance_uid`` are the request's, which the data set must match;
    None where there is no request (``deid``'s input files)."""
    with open(path, "rb", buffering=io.DEFAULT_BUFFER_SIZE) as f:
        size = os.fstat(f.fileno()).st_size
        ts = _transfer_syntax(f)
        structure = _walk_data_set(f, size, ts, ingest.inflated_limit)
    ds = Dataset(structure.elements)
    values = _identifying_uids(ds)
    if sop_class_uid is not None and values["SOPClassUID"] != sop_class_uid:
        raise InvalidInstance(DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Class UID differs from the request")
    if sop_instance_uid is not None and values["SOPInstanceUID"] != sop_instance_uid:
        raise InvalidInstance(DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Instance UID differs from the request")
    if structure.pixel_lengths:
        _check_image(ds, structure.pixel_lengths.get(PIXEL_DATA), ts, ingest)
    return InstanceHeader(
        sop_class_uid=values["SOPClassUID"],
        sop_instance_uid=values["SOPInstanceUID"],
        study_instance_uid=values["StudyInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        transfer_syntax_uid=str(ts),
    )


def read_file_meta(f, tags: frozenset[int]) -> dict[int, str]:
    """Read the file meta group (positioned after it on return): the text of each of ``tags`` in
    it, "" where absent. C-STORE reads its transfer syntax here, STOW-RS also its SOP UIDs."""
    # (0002,0000) UL 4 <value> is always the first meta element, explicit VR little endian.
    head = f.read(144)
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        raise InvalidInstance(CANNOT_UNDERSTAND, NO_FILE_META)
    meta_length = struct.unpack("<L", head[140:144])[0]
    if meta_length > MAX_META_BYTES:
        raise InvalidInstance(CANNOT_UNDERSTAND, "file meta information cannot be parsed")
    meta = f.read(meta_length)
    try:
        found = walk(FileSource(io.BytesIO(meta), len(meta)), False, True, tags).elements
        return {tag: found[tag].value.rstrip(b"\0 ").decode("ascii") if tag in found and found[tag].value else ""
                for tag in tags}
    except (Truncated, Malformed, UnicodeDecodeError):
        raise InvalidInstance(CANNOT_UNDERSTAND, "file meta information cannot be parsed") from None


def _transfer_syntax(f) -> UID:
    """Read the file meta group (positioned after it on return) for its transfer syntax."""
    ts = UID(read_file_meta(f, frozenset({TRANSFER_SYNTAX_UID}))[TRANSFER_SYNTAX_UID])
    if not ts.is_transfer_syntax:
        raise InvalidInstance(CANNOT_UNDERSTAND, "unknown transfer syntax in file meta")
    return ts


def _walk_data_set(f, size: int, ts: UID, inflated_limit: int) -> Structure:
    if ts == DeflatedExplicitVRLittleEndian:
        source = InflatingSource(f, inflated_limit)
    else:
        source = FileSource(f, size)
    try:
        return walk(source, ts.is_implicit_VR, ts.is_little_endian, HEADER_TAGS)
    except Truncated:
        raise InvalidInstance(CANNOT_UNDERSTAND, "dataset is truncated") from None
    except Malformed as exc:
        raise InvalidInstance(CANNOT_UNDERSTAND, f"dataset cannot be parsed ({exc.args[0]})") from None
    except DoesNotInflate:
        raise InvalidInstance(CANNOT_UNDERSTAND, "deflated dataset does not inflate") from None
    except InflateLimit:
        raise InvalidInstance(
            OUT_OF_RESOURCES, "deflated dataset inflates beyond ingest.max_inflated_bytes"
        ) from None


def _identifying_uids(ds: Dataset) -> dict[str, str]:
    try:
        values = {k: str(ds[k].value or "").strip() for k in REQUIRED if k in ds}
    except Exception as exc:
        raise InvalidInstance(
            CANNOT_UNDERSTAND, f"identifying UIDs cannot be read ({type(exc).__name__})"
        ) from None
    missing = [k for k in REQUIRED if not values.get(k)]
    if missing:
        raise InvalidInstance(CANNOT_UNDERSTAND, "missing required attribute(s): " + ", ".join(missing))
    return values


def _check_image(ds: Dataset, pixel_length: int | None, ts: UID, ingest: IngestConfig) -> None:
    """Refuse an image a decoder could not afford, or whose native pixel data is cut short.

    The declared geometry is checked for compressed pixel data too: the decoder allocates
    what the header declares, however small the compressed stream is.
    """
    declared, frames, native = declared_pixel_bytes(ds), declared_frames(ds), native_pixel_bytes(ds)
    if declared is None or frames is None or native is None:
        raise InvalidInstance(CANNOT_UNDERSTAND, "pixel data without a usable image description")
    if frames > ingest.max_frames:
        raise InvalidInstance(OUT_OF_RESOURCES, "declared frame count above ingest.max_frames")
    if declared > ingest.max_pixel_bytes:
        raise InvalidInstance(OUT_OF_RESOURCES, "declared image larger than ingest.max_pixel_bytes")
    if pixel_length is not None and not ts.is_compressed and pixel_length < native:
        raise InvalidInstance(CANNOT_UNDERSTAND, "pixel data is shorter than the image it describes")
