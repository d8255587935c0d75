"""Retain Longitudinal Modified Dates: one shift per patient, intervals kept."""

from datetime import date

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.deid.canary import SyntheticIdentity, base_dataset
from gateway.deid.dates import offset_days, shift_da, shift_dt, shift_value

from .conftest import run_stage


def days_between(a: str, b: str) -> int:
    return (date(int(b[:4]), int(b[4:6]), int(b[6:8])) - date(int(a[:4]), int(a[4:6]), int(a[6:8]))).days


def test_offset_is_stable_per_patient_and_in_range():
    a = offset_days("PAT1", b"k", 365, 3650)
    assert a == offset_days("PAT1", b"k", 365, 3650)
    assert -3650 <= a <= -365
    assert len({offset_days(f"P{n}", b"k", 365, 3650) for n in range(50)}) > 40


def test_value_forms_are_shifted():
    assert shift_da("20200301", -1) == "20200229"
    assert shift_da("20200301-20200305", -1) == "20200229-20200304"
    assert shift_da("2020.03.01", -1) == "20200229"
    assert shift_dt("20200301101010.123+0100", -1) == "20200229101010.123+0100"
    assert shift_dt("202003", -40) == "202001"
    assert shift_value("TM", "101010", -5) == "101010"
    assert shift_value("DA", ["20200301", "20200302"], -1) == ["20200229", "20200301"]
    assert shift_da("not a date", -1) is None


def make(patient_id: str) -> Dataset:
    ds = base_dataset(SyntheticIdentity.random(3))
    ds.PatientID = patient_id
    ds.StudyDate, ds.SeriesDate, ds.AcquisitionDateTime = "20200110", "20200115", "20200120083000"
    ds.StudyTime = "083000"
    item = Dataset()
    item.ContentDate = "20200125"
    ds.ReferencedSeriesSequence = Sequence([item])
    return ds


def test_every_date_moves_by_the_same_offset_inside_sequences_too():
    out, _ = run_stage("research", make("PAT-A"))
    shift = days_between("20200110", out.StudyDate)
    assert shift < 0
    assert days_between("20200115", out.SeriesDate) == shift
    assert days_between("20200120", out.AcquisitionDateTime[:8]) == shift
    assert out.AcquisitionDateTime[8:] == "083000"
    assert out.StudyTime == "083000"
    assert days_between("20200125", out.ReferencedSeriesSequence[0].ContentDate) == shift


def test_the_same_patient_gets_the_same_offset_in_another_study():
    first, _ = run_stage("research", make("PAT-A"))
    later = make("PAT-A")
    later.StudyDate = "20210110"
    second, _ = run_stage("research", later)
    assert days_between(first.StudyDate, second.StudyDate) == days_between("20200110", "20210110")


def test_full_dates_are_kept_and_basic_removes_them():
    kept, _ = run_stage("retain-dates", make("PAT-A"))
    assert kept.StudyDate == "20200110" and kept.StudyTime == "083000"
    removed, _ = run_stage("basic", make("PAT-A"))
    assert removed.StudyDate == "" and removed.StudyTime == ""
