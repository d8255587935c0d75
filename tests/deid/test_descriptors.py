"""Clean Descriptors: descriptions keep their meaning and lose identifying words."""

import pytest
from pydicom.dataset import Dataset

from tests.deid.canary import SyntheticIdentity, base_dataset
from gateway.deid.descriptors import IdentityTerms, clean_text

from .conftest import run_stage


@pytest.fixture
def identity() -> IdentityTerms:
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "00012345"
    ds.PatientBirthDate = "19700101"
    ds.AccessionNumber = "ACC777"
    return IdentityTerms.from_dataset(ds)


@pytest.mark.parametrize("text, expected", [
    ("CT CHEST DOE", "CT CHEST"),
    ("MRI brain John Doe follow-up", "MRI brain follow-up"),
    ("DOE JOHN T1 SAG", "T1 SAG"),
    ("Study 00012345 head", "Study head"),
    ("Study 12345 head", "Study head"),
    ("born 1970-01-01 knee", "born knee"),
    ("born 01/01/1970 knee", "born knee"),
    ("ACC777 abdomen", "abdomen"),
])
def test_the_instances_own_identity_is_removed(identity, text, expected):
    assert clean_text(text, identity) == expected


@pytest.mark.parametrize("text, expected", [
    ("Follow-up 2021-03-04 thorax", "Follow-up thorax"),
    ("MRN 987654321 pelvis", "MRN pelvis"),
    ("call 555-123-4567 spine", "call spine"),
    ("T2 FLAIR AX 5mm", "T2 FLAIR AX 5mm"),
])
def test_anything_shaped_like_a_date_or_id_is_removed(text, expected):
    assert clean_text(text, IdentityTerms()) == expected


def test_descriptions_are_cleaned_only_under_the_option():
    ds = base_dataset(SyntheticIdentity.random(4))
    ds.PatientName, ds.PatientID = "DOE^JOHN", "12345"
    ds.StudyDescription, ds.ProtocolName = "CT CHEST JOHN DOE", "Thorax 12345"
    research, _ = run_stage("research", ds)
    assert research.StudyDescription == "CT CHEST" and research.ProtocolName == "Thorax"
    basic, _ = run_stage("basic", ds)
    assert "StudyDescription" not in basic
