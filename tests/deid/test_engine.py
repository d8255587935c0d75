"""What the header stage does to an instance, action by action."""

from __future__ import annotations

import copy
import io
import logging

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.config import load_config
from tests.deid.canary import SyntheticIdentity, base_dataset
from gateway.deid.stage import HeaderStage
from gateway.deid.uids import remap_uid
from gateway.pipeline.stage import InstanceContext, Quarantine

from .conftest import SECRET, run_stage


@pytest.fixture
def ds() -> Dataset:
    ds = base_dataset(SyntheticIdentity.random(1))
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "00012345"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.PatientAge = "054Y"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101010"
    ds.SeriesDate = "20200103"
    ds.AccessionNumber = "ACC777"
    ds.StudyInstanceUID = "1.2.3.4.5"
    ds.SeriesInstanceUID = "1.2.3.4.6"
    ds.FrameOfReferenceUID = "1.2.3.4.7"
    ds.StudyDescription = "CT CHEST DOE 00012345"
    ds.InstitutionName = "General Hospital"
    ds.ReferringPhysicianName = "WHO^DR"
    ds.StudyID = "S1"
    ds.ConvolutionKernel = "B30f"
    ds.PositionReferenceIndicator = "free text here"
    return ds


def deid(profile: str, ds: Dataset, **kw) -> Dataset:
    return run_stage(profile, ds, **kw)[0]


def test_basic_profile_removes_empties_and_replaces(ds):
    out = deid("basic", ds)
    assert out.PatientBirthDate == "" and out.StudyDate == "" and out.PatientSex == ""
    assert "PatientAge" not in out and "InstitutionName" not in out
    assert out.ReferringPhysicianName == "" and out.StudyID == ""
    assert out.StudyInstanceUID == remap_uid("1.2.3.4.5", SECRET)
    assert out.SOPInstanceUID != ds.SOPInstanceUID and out.SOPInstanceUID.startswith("2.25.")
    assert out.PatientID == str(out.PatientName) and out.PatientID != ds.PatientID
    assert out.AccessionNumber not in ("", "ACC777") and len(out.AccessionNumber) <= 16


def test_pixel_data_and_structure_are_kept(ds):
    out = deid("basic", ds)
    assert out.PixelData == ds.PixelData
    assert (out.Rows, out.Columns, out.Modality, out.SOPClassUID) == (ds.Rows, ds.Columns, "CT", ds.SOPClassUID)
    assert out.Manufacturer == ds.Manufacturer and out.ConvolutionKernel == "B30f"


def test_unlisted_free_text_is_emptied(ds):
    assert deid("basic", ds).PositionReferenceIndicator == ""


def test_unlisted_free_text_rule_is_configurable(ds):
    config = load_config(overrides={"deid": {"profiles": {"strict": {"unlisted_text": "remove"}}}})
    out = HeaderStage(config.deid, "strict", SECRET)(copy.deepcopy(ds), InstanceContext(original=ds))
    assert "PositionReferenceIndicator" not in out


def test_file_meta_follows_the_new_sop_instance_uid(ds):
    out = deid("basic", ds)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPClassUID == ds.file_meta.MediaStorageSOPClassUID
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert "SourceApplicationEntityTitle" not in out.file_meta


def test_uids_are_consistent_across_instances(ds):
    other = copy.deepcopy(ds)
    other.SOPInstanceUID = "1.2.3.9"
    a, b = deid("basic", ds), deid("basic", other)
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SOPInstanceUID != b.SOPInstanceUID
    assert a.PatientID == b.PatientID


def test_attributes_are_handled_at_any_depth(ds):
    item3 = Dataset()
    item3.PatientName = "DOE^JOHN"
    item3.StudyInstanceUID = "1.2.3.4.5"
    item3.CodeValue, item3.CodingSchemeDesignator, item3.CodeMeaning = "121311", "DCM", "Localizer"
    item2 = Dataset()
    item2.PurposeOfReferenceCodeSequence = Sequence([item3])
    item1 = Dataset()
    item1.ReferencedInstanceSequence = Sequence([item2])
    ds.ReferencedSeriesSequence = Sequence([item1])
    out = deid("basic", ds)
    deep = out.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].PurposeOfReferenceCodeSequence[0]
    assert deep.PatientName == ""
    assert deep.StudyInstanceUID == out.StudyInstanceUID
    assert deep.CodeMeaning == "Localizer"


def test_x_z_u_star_sequences_keep_items_with_new_uids(ds):
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.99"
    ds.ReferencedImageSequence = Sequence([ref])
    out = deid("basic", ds)
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == remap_uid("1.2.3.4.99", SECRET)
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == ds.SOPClassUID


def test_combined_actions_follow_the_attribute_type(ds):
    ds.ContentDate = "20200102"  # Z/D, Type 2C in CT: a value gives a dummy
    ds.OperatorsName = "OP^ONE"  # X/Z/D, Type 3 in General Series: removed
    ds.AcquisitionDate = "20200102"  # X/Z: emptied
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", "1.2.3.5"
    ds.ReferencedStudySequence = Sequence([ref])  # X/Z sequence, Type 3: removed, not emptied
    out = deid("basic", ds)
    assert out.ContentDate == "19000101"
    assert "OperatorsName" not in out
    assert out.AcquisitionDate == ""
    assert "ReferencedStudySequence" not in out


def test_private_attributes_are_removed(ds):
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "DOE^JOHN")
    out = deid("basic", ds)
    assert not any(elem.tag.is_private for elem in out)


def test_safe_private_attributes_are_kept_under_the_option(ds):
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")
    siemens.add_new(0x10, "LO", "DOE^JOHN")
    out = deid("research", ds)
    kept = out.private_block(0x0019, "SIEMENS MR HEADER")
    assert kept[0x0C].value == 1000
    assert kept.get_tag(0x10) not in out
    assert "113111" in codes(out)


def test_overlays_and_curves_are_removed(ds):
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60003000, "OW", b"\x01" * 8)
    ds.add_new(0x50023000, "OB", b"DOE JOHN")
    for profile in ("basic", "research"):
        out = deid(profile, ds)
        assert not any(0x5000 <= e.tag.group <= 0x60FF and e.tag.group & 0xFF00 in (0x5000, 0x6000) for e in out)


def codes(out: Dataset) -> list[str]:
    return [item.CodeValue for item in out.DeidentificationMethodCodeSequence]


def test_method_codes_list_declared_and_applied_options_only(ds):
    basic = deid("basic", ds, declared={"113101"})
    assert codes(basic) == ["113100", "113101"]
    research = deid("research", ds)
    assert set(codes(research)) == {"113100", "113103", "113104", "113105", "113107", "113108", "113109", "113111"}
    assert codes(deid("retain-dates", ds)) == ["113100", "113106"]
    assert basic.PatientIdentityRemoved == "YES"
    methods = research.DeidentificationMethod
    assert methods[0] == load_config().deid.method_text and all(len(v) <= 64 for v in methods)


def test_longitudinal_temporal_information_is_declared(ds):
    assert deid("basic", ds).LongitudinalTemporalInformationModified == "REMOVED"
    assert deid("research", ds).LongitudinalTemporalInformationModified == "MODIFIED"
    assert deid("retain-dates", ds).LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_per_tag_overrides(ds):
    config = load_config(overrides={"deid": {"profiles": {"site": {"overrides": {
        "StudyDescription": "keep", "(0018,1210)": "remove", "PatientSex": "empty",
        "InstitutionName": {"replace": "SITE-A"},
    }}}}})
    out = HeaderStage(config.deid, "site", SECRET)(copy.deepcopy(ds), InstanceContext(original=ds))
    assert out.StudyDescription == ds.StudyDescription
    assert "ConvolutionKernel" not in out
    assert out.PatientSex == ""
    assert out.InstitutionName == "SITE-A"


def test_report_counts_actions_and_holds_no_values(ds, caplog):
    caplog.set_level(logging.DEBUG)
    out, ctx = run_stage("research", ds)
    report = ctx.reports[-1]
    assert report.stage == "header" and {"X", "K", "U"} <= set(report.counts)
    text = repr(report) + caplog.text
    for value in ("DOE", "JOHN", "12345", "19700101", "ACC777", "General Hospital"):
        assert value not in text


def test_specific_character_set_stays_right_after_cleaning():
    ds = base_dataset(SyntheticIdentity.random(2))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "X1"
    ds.StudyDescription = "Thorax Müller Übersicht"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    original = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    out = deid("research", original)
    written = io.BytesIO()
    out.save_as(written, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(written.getvalue()))
    assert back.SpecificCharacterSet == "ISO_IR 192"
    assert back.StudyDescription == "Thorax Übersicht"
    assert "Müller".encode() not in written.getvalue()


def test_unsafe_instances_are_quarantined_without_values(ds, monkeypatch):
    import gateway.deid.stage as stage_module

    def broken(*args, **kwargs):
        raise ValueError("DOE^JOHN could not be parsed")

    monkeypatch.setattr(stage_module, "deidentify", broken)
    with pytest.raises(Quarantine) as info:
        HeaderStage(load_config().deid, "basic", SECRET)(ds, InstanceContext(original=ds))
    assert "DOE" not in info.value.reason


def test_unknown_profile_is_a_configuration_error():
    with pytest.raises(ValueError, match="unknown de-identification profile"):
        HeaderStage(load_config().deid, "nope", SECRET)


def test_unlisted_technical_labels_are_kept_but_cleaned(ds):
    ds.SeriesDescription = "x"
    ds.add_new(0x00620005, "LO", "Tumor DOE 00012345")  # Segment Label: typed by a person
    ds.SequenceName = "*tfl3d1_16ns"
    out = deid("basic", ds)
    assert out[0x00620005].value == "Tumor"
    assert out.SequenceName == "*tfl3d1_16ns"
