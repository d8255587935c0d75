"""Leak tests: a synthetic identity everywhere in, no trace of it out, and no over-scrubbing."""

from __future__ import annotations

import copy
import io
import logging
import warnings

import pytest
from pydicom.dataset import Dataset

from tests.deid.canary import SyntheticIdentity, canary_dataset, inject

from .conftest import PROFILES, corpus_names, dataset, run_stage, stage

IDENTITY = SyntheticIdentity.random(2024)


def written(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def leaks(profile: str, *texts: bytes | str) -> list[str]:
    """The renderings of IDENTITY that occur in any of ``texts``, case-insensitively."""
    haystack = b"\n".join(t.encode("utf-8", "replace") if isinstance(t, str) else t for t in texts).lower()
    forbidden = IDENTITY.forbidden(stage(profile).profile.options)
    return [f for f in forbidden if f.lower().encode() in haystack]


def output_name(ds: Dataset) -> str:
    """How the gateway names an output file: by its (new) UIDs."""
    return "/".join(str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")) + ".dcm"


@pytest.fixture(scope="module")
def canary() -> Dataset:
    return canary_dataset(IDENTITY)


def test_the_canary_carries_every_rendering(canary):
    """The leak test is only as good as its canary: every rendering is really in the input."""
    data = written(canary)
    everything = set(IDENTITY.forbidden(set()))
    missing = [f for f in everything if f.lower().encode() not in data.lower()]
    assert missing == []
    vrs = {elem.VR for elem in canary.iterall()}
    assert {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "DA", "DT", "TM", "AS", "CS", "UI", "UR"} <= vrs


@pytest.mark.parametrize("profile", PROFILES)
def test_no_canary_survives(profile, canary, caplog):
    caplog.set_level(logging.DEBUG)
    out, ctx = run_stage(profile, canary)
    reports = repr([(r.stage, r.counts, r.details) for r in ctx.reports])
    assert leaks(profile, written(out), caplog.text, reports, output_name(out)) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_what_every_profile_keeps_is_still_there(profile, canary):
    out, _ = run_stage(profile, canary)
    assert out.PixelData == canary.PixelData
    assert (out.Modality, out.Manufacturer, out.Rows) == ("CT", "ACME MEDICAL", 4)
    items = list(out.ContentSequence[0].ContentSequence)
    num = next(i for i in items if i.ValueType == "NUM")
    assert num.MeasuredValueSequence[0].NumericValue == 42.5
    code = next(i for i in items if i.ValueType == "CODE")
    assert code.ConceptCodeSequence[0].CodeValue == "39607008"
    assert out.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].PurposeOfReferenceCodeSequence[0].CodeMeaning == "Localizer"


def test_research_keeps_characteristics_devices_descriptions_and_safe_private(canary):
    out, _ = run_stage("research", canary)
    assert (out.PatientSex, out.PatientAge, str(out.PatientWeight)) == ("F", "053Y", "77")
    assert out.DeviceSerialNumber == IDENTITY.device
    assert out.StudyDescription == "CT CHEST"
    assert out.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == 1000
    assert list(out.private_block(0x0043, "GEMS_PARM_01")[0x39].value) == [1000, 0, 0, 0]
    text = next(i for i in out.ContentSequence[0].ContentSequence if i.ValueType == "TEXT")
    assert text.TextValue.startswith("Nodule in right lung")
    assert out.StudyDate not in ("", IDENTITY.event_date) and len(out.StudyDate) == 8
    assert out.StudyTime == IDENTITY.event_time


def test_retain_dates_keeps_the_dates(canary):
    out, _ = run_stage("retain-dates", canary)
    assert out.StudyDate == IDENTITY.event_date and out.StudyTime == IDENTITY.event_time


def test_basic_keeps_no_patient_characteristics(canary):
    out, _ = run_stage("basic", canary)
    assert out.PatientSex == "" and "PatientAge" not in out and "PatientWeight" not in out


@pytest.mark.parametrize("name", corpus_names())
@pytest.mark.parametrize("profile", PROFILES)
def test_no_canary_survives_in_any_test_file(profile, name):
    source = dataset(name)
    if str(getattr(source, "file_meta", {}).get("MediaStorageSOPClassUID", "")) == "1.2.840.10008.1.3.10":
        pytest.skip("DICOMDIR: quarantined by design")
    injected = inject(copy.deepcopy(source), IDENTITY)
    try:
        written(injected)
    except Exception:  # noqa: BLE001
        pytest.skip("pydicom cannot write this file back even unchanged")
    out, ctx = run_stage(profile, injected)
    assert leaks(profile, written(out), repr(ctx.reports), output_name(out)) == []
