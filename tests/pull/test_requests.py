"""A coordinator's list becomes C-FIND requests; a bad line is named by number, never quoted."""

from __future__ import annotations

import pytest

from gateway.pull.requests import RequestError, from_query, read_list


def _list(tmp_path, text: str):
    path = tmp_path / "cohort.csv"
    path.write_text(text)
    return read_list(path)


def test_accession_numbers_with_or_without_a_header(tmp_path):
    kind, requests = _list(tmp_path, "accession_number\nA1\n\n A2 \n")
    assert kind == "accessions"
    assert [(r.line, r.identifiers) for r in requests] == [
        (2, (("AccessionNumber", "A1"),)), (4, (("AccessionNumber", "A2"),))]
    assert [r.identifiers for r in _list(tmp_path, "A1\nA2\n")[1]] == [r.identifiers for r in requests]


def test_patients_with_date_ranges(tmp_path):
    kind, requests = _list(tmp_path, "patient_id,from,to\nP1,2024-01-01,2024-02-01\nP2,,20240301\nP3\n")
    assert kind == "patients"
    assert [dict(r.identifiers) for r in requests] == [
        {"PatientID": "P1", "StudyDate": "20240101-20240201"},
        {"PatientID": "P2", "StudyDate": "-20240301"},
        {"PatientID": "P3"},
    ]
    assert dict(_list(tmp_path, "patient_id,study_date\nP1,2024-05-06\n")[1][0].identifiers)["StudyDate"] == "20240506"


@pytest.mark.parametrize("text, message", [
    ("A1,SECRET-PID\n", "line 1: expected one accession number"),
    ("patient_id,from\nSECRET-PID,2024-13\n", "line 2: a date is not"),
    ("patient_id,from\n,2024-01-01\n", "line 2: no usable patient ID"),
    ("", "the list is empty"),
])
def test_bad_lines_are_named_not_quoted(tmp_path, text, message):
    with pytest.raises(RequestError) as error:
        _list(tmp_path, text)
    assert message in str(error.value) and "SECRET" not in str(error.value)


def test_a_query():
    kind, (request,) = from_query(["Modality=CT", "StudyDate=20240101-20240131"])
    assert kind == "query" and dict(request.identifiers) == {"ModalitiesInStudy": "CT", "StudyDate": "20240101-20240131"}
    with pytest.raises(RequestError, match="query term 1"):
        from_query(["NotAKeyword=1"])
