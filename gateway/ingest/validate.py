"""Checks that a received C-STORE payload is a complete, understandable instance.

pydicom reads leniently: a stream cut short parses as a shorter dataset with only a warning.
The receiver must not acknowledge such a stream, so the structure is walked once more
strictly before anything is accepted. Reasons never quote values from the dataset.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

UNDEFINED_LENGTH = 0xFFFFFFFF

# C-STORE failure statuses (PS3.4 Annex B.2.3 and PS3.7 Annex C).
CANNOT_UNDERSTAND = 0xC210
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900


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


def _walk_structure(data: bytes, ts: UID) -> None:
    """Raise InvalidInstance if any element's value runs past the end of the stream."""
    body = data[132 + _meta_length(data) :]
    if ts == DeflatedExplicitVRLittleEndian:
        try:
            body = zlib.decompress(body, -zlib.MAX_WBITS)
        except zlib.error:
            raise InvalidInstance(CANNOT_UNDERSTAND, "deflated dataset does not inflate") from None
    stream = io.BytesIO(body)
    try:
        for raw in data_element_generator(stream, ts.is_implicit_VR, ts.is_little_endian):
            # Sequences come back parsed (their items were read, or EOFError raised).
            length = getattr(raw, "length", UNDEFINED_LENGTH)
            if length != UNDEFINED_LENGTH and raw.value_tell + length > len(body):
                raise InvalidInstance(CANNOT_UNDERSTAND, "dataset is truncated")
        # A sequence delimiter that was cut off leaves the stream positioned past its end.
        if stream.tell() > len(body):
            raise InvalidInstance(CANNOT_UNDERSTAND, "dataset is truncated")
    except InvalidInstance:
        raise
    except EOFError:
        raise InvalidInstance(CANNOT_UNDERSTAND, "dataset is truncated") from None
    except Exception as exc:  # malformed tag, VR or length
        raise InvalidInstance(
            CANNOT_UNDERSTAND, f"dataset cannot be parsed ({type(exc).__name__})"
        ) from None


def _meta_length(data: bytes) -> int:
    """Length of the file meta group after preamble and 'DICM', from (0002,0000)."""
    # (0002,0000) UL 4 <value> is always the first meta element, explicit VR little endian.
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise InvalidInstance(CANNOT_UNDERSTAND, "file meta information is missing")
    group_length = int.from_bytes(data[140:144], "little")
    return 12 + group_length


def _native_pixel_bytes(ds: Dataset) -> int | None:
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.SamplesPerPixel)
        if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
            samples = 2  # two chroma samples shared by each pair of pixels
        bits = int(ds.BitsAllocated)
        return (int(ds.Rows) * int(ds.Columns) * frames * samples * bits + 7) // 8
    except (AttributeError, TypeError, ValueError):
        return None


def validate_instance(data: bytes, sop_class_uid: str, sop_instance_uid: str) -> InstanceHeader:
    """Parse and check a received stream (preamble + file meta + dataset)."""
    try:
        ds = dcmread(io.BytesIO(data))
        ts = UID(ds.file_meta.get("TransferSyntaxUID", ""))
        if not ts.is_transfer_syntax:
            raise InvalidInstance(CANNOT_UNDERSTAND, "unknown transfer syntax in file meta")
        _walk_structure(data, ts)
    except InvalidInstance:
        raise
    except InvalidDicomError:
        raise InvalidInstance(CANNOT_UNDERSTAND, "not a DICOM dataset") from None
    except Exception as exc:
        raise InvalidInstance(
            CANNOT_UNDERSTAND, f"dataset cannot be parsed ({type(exc).__name__})"
        ) from None

    required = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    try:
        values = {k: str(ds[k].value or "").strip() for k in required if k in ds}
    except Exception as exc:
        raise InvalidInstance(
            CANNOT_UNDERSTAND, f"identifying UIDs cannot be read ({type(exc).__name__})"
        ) from None
    missing = [k for k in required if not values.get(k)]
    if missing:
        raise InvalidInstance(CANNOT_UNDERSTAND, "missing required attribute(s): " + ", ".join(missing))
    if values["SOPClassUID"] != sop_class_uid:
        raise InvalidInstance(DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Class UID differs from the request")
    if values["SOPInstanceUID"] != sop_instance_uid:
        raise InvalidInstance(
            DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Instance UID differs from the request"
        )

    if "PixelData" in ds and not ts.is_compressed:
        expected = _native_pixel_bytes(ds)
        if expected is None:
            raise InvalidInstance(CANNOT_UNDERSTAND, "pixel data without a usable image description")
        if len(ds.PixelData) < expected:
            raise InvalidInstance(CANNOT_UNDERSTAND, "pixel data is shorter than the image it describes")

    return InstanceHeader(
        sop_class_uid=values["SOPClassUID"],
        sop_instance_uid=values["SOPInstanceUID"],
        study_instance_uid=values["StudyInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        transfer_syntax_uid=str(ts),
    )
