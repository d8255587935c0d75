"""What a coordinator asks for: a list of accession numbers, of patient IDs with date ranges, or
one C-FIND query, read into requests the PACS can answer.

The values are patient data: they live in memory for as long as the pull runs, and are stored
only as keyed hashes (:func:`gateway.pull.state.item_key`). Messages about a bad list name the
line and what is wrong with it, never its content.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import dictionary_VR, tag_for_keyword

ACCESSION_HEADERS = ("accession_number", "accession", "accessionnumber")
PATIENT_HEADERS = ("patient_id", "patientid")
FROM_HEADERS = ("from", "study_date_from", "date_from", "start")
TO_HEADERS = ("to", "study_date_to", "date_to", "end")
DATE_HEADERS = ("study_date", "date")
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


class RequestError(ValueError):
    """A list or query that cannot be used; the message names the line, not the value."""


@dataclass(frozen=True)
class PullRequest:
    """One requested item: its line in the list and the C-FIND keys it stands for."""

    line: int
    identifiers: tuple[tuple[str, str], ...]  # (keyword, value), sorted

    def canonical(self) -> str:
        """The request as text, the same for the same request whatever the file looked like."""
        return json.dumps(self.identifiers)


def read_list(path: Path) -> tuple[str, list[PullRequest]]:
    """The kind (``accessions`` or ``patients``) and the requests of a coordinator's CSV.

    One accession number per line, with or without an ``accession_number`` header; or a header
    ``patient_id,from,to`` (or ``patient_id,study_date``), dates as YYYYMMDD or YYYY-MM-DD,
    either end of a range may be empty. Empty lines are skipped.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read the list {path}: {type(exc).__name__}") from None
    rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)]
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows:
        raise RequestError("the list is empty")
    header = [c.lower().replace(" ", "_") for c in rows[0][1]]
    if any(h in PATIENT_HEADERS for h in header):
        return "patients", [_patient(n, row, header) for n, row in rows[1:]]
    body = rows[1:] if header[0] in ACCESSION_HEADERS else rows
    return "accessions", [_accession(n, row) for n, row in body]


def _accession(line: int, row: list[str]) -> PullRequest:
    values = [c for c in row if c]
    if len(values) != 1:
        raise RequestError(f"line {line}: expected one accession number (for patient IDs, give the header "
                           "patient_id,from,to)")
    if len(values[0]) > 16 or "\\" in values[0]:
        raise RequestError(f"line {line}: not an accession number (at most 16 characters, no backslash)")
    return PullRequest(line, (("AccessionNumber", values[0]),))


def _patient(line: int, row: list[str], header: list[str]) -> PullRequest:
    def cell(names: tuple[str, ...]) -> str:
        index = next((i for i, h in enumerate(header) if h in names), None)
        return row[index] if index is not None and index < len(row) else ""

    patient = cell(PATIENT_HEADERS)
    if not patient or len(patient) > 64 or "\\" in patient:
        raise RequestError(f"line {line}: no usable patient ID")
    exact = cell(DATE_HEADERS)
    dates = _date(line, exact) if exact else _range(line, cell(FROM_HEADERS), cell(TO_HEADERS))
    keys = [("PatientID", patient)] + ([("StudyDate", dates)] if dates else [])
    return PullRequest(line, tuple(sorted(keys)))


def _date(line: int, value: str) -> str:
    found = _DATE.match(value)
    if not found:
        raise RequestError(f"line {line}: a date is not YYYYMMDD or YYYY-MM-DD")
    return "".join(found.groups())


def _range(line: int, start: str, end: str) -> str:
    if not start and not end:
        return ""
    return f"{_date(line, start) if start else ''}-{_date(line, end) if end else ''}"


def from_query(pairs: list[str]) -> tuple[str, list[PullRequest]]:
    """One request from ``Keyword=value`` pairs (study-level C-FIND keys; ``Modality`` is
    asked as ModalitiesInStudy). Wildcards and ranges are the PACS's to interpret."""
    keys = []
    for number, pair in enumerate(pairs, start=1):
        keyword, sep, value = pair.partition("=")
        keyword = keyword.strip()
        keyword = "ModalitiesInStudy" if keyword == "Modality" else keyword
        if not sep or tag_for_keyword(keyword) is None or dictionary_VR(tag_for_keyword(keyword)) == "SQ":
            raise RequestError(f"query term {number}: expected Keyword=value with a DICOM keyword")
        keys.append((keyword, value.strip()))
    if not keys:
        raise RequestError("the query is empty")
    return "query", [PullRequest(1, tuple(sorted(keys)))]
