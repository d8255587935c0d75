"""Reading instances for the pipeline and writing its results, for the worker and batch mode.

Both paths read the same way (the bytes parsed twice: one dataset as received, one for the
stages to edit) and refuse the same outputs (:func:`check_output`), so a file de-identified
with ``deid-gateway deid`` is the file the network path would have sent.
"""

from __future__ import annotations

import io
from pathlib import Path

from pydicom import Dataset, dcmread

from gateway.pipeline.pipeline import ProfileResult
from gateway.pipeline.stage import Quarantine, contained

#: CID 7050 "Retain UIDs": the one option under which an output keeps its SOP Instance UID.
RETAIN_UIDS = "113110"


def read_twice(path: str | Path) -> tuple[Dataset, Dataset]:
    """The instance as received, and an independent copy of it for the stages to edit.

    Parsing the bytes twice is several times cheaper than deep-copying a dataset."""
    data = Path(path).read_bytes()
    return dcmread(io.BytesIO(data)), dcmread(io.BytesIO(data))


def read_ahead(paths: list[str | Path]) -> list[tuple[Dataset, Dataset] | None]:
    """``read_twice`` of each path, None where that fails: the instance's own turn reads it
    again and meets the error where errors are handled."""
    out: list[tuple[Dataset, Dataset] | None] = []
    for path in paths:
        try:
            out.append(read_twice(path))
        except BaseException as exc:  # noqa: BLE001 - read again, and handled, in the instance's own turn
            contained(exc)
            out.append(None)
    return out


def encode(ds: Dataset) -> bytes:
    """The dataset in the DICOM file format, in its own transfer syntax."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def check_output(original: Dataset, result: ProfileResult) -> None:
    """Last line of defence before anything reaches the outbox."""
    ds = result.dataset
    if ds.get("PatientIdentityRemoved") != "YES":
        raise Quarantine("output lacks PatientIdentityRemoved = YES")
    if ds.file_meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID"):
        raise Quarantine("output file meta does not match its SOP Instance UID")
    if RETAIN_UIDS not in result.declared_options and ds.get("SOPInstanceUID") == original.get("SOPInstanceUID"):
        raise Quarantine("output kept the original SOP Instance UID")
