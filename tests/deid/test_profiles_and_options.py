"""Profiles from config.yaml, option behaviour, and the safe-private list."""

from __future__ import annotations

import copy
import json
import logging
from importlib import resources

import pytest
from pydicom._private_dict import private_dictionaries
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.config import ConfigError, load_config
from tests.deid.canary import SyntheticIdentity, base_dataset
from gateway.deid.stage import build_header_stages
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.stage import InstanceContext

from .conftest import SECRET, run_stage

YAML = """
deid:
  profile: research
  profiles:
    research:
      options: [retain_modified_dates, retain_patient_characteristics, clean_descriptors]
    site-b:
      options: [retain_uids, retain_institution_identity]
      overrides:
        StudyDescription: keep
        "(0010,0040)": {replace: "O"}
      unlisted_text: remove
egress:
  destinations:
    - {name: a, ae_title: A, host: localhost, port: 104}
    - {name: b, ae_title: B, host: localhost, port: 105, profile: site-b}
"""


def test_config_yaml_lists_and_overrides_profiles(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(YAML)
    config = load_config(path)
    assert set(config.deid.profiles) == {"basic", "research", "retain-dates", "site-b"}
    assert "clean_graphics" not in config.deid.profiles["research"].options
    stages = build_header_stages(config.deid, config.profiles_in_use(), SECRET)
    assert set(stages) == {"research", "site-b"}


def test_unknown_options_and_profiles_are_rejected():
    with pytest.raises(ConfigError, match="deid.profiles"):
        load_config(overrides={"deid": {"profiles": {"x": {"options": ["retain_everything"]}}}})
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config(overrides={"deid": {"profile": "nope"}})
    with pytest.raises(ConfigError, match=r"egress\.destinations\.0\.profile"):
        load_config(overrides={"egress": {"destinations": [
            {"name": "a", "ae_title": "A", "host": "h", "port": 1, "profile": "nope"}]}})


def test_several_profiles_run_side_by_side(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(YAML)
    config = load_config(path)
    stages = build_header_stages(config.deid, config.profiles_in_use(), SECRET)
    pipeline = Pipeline([], {name: [stage] for name, stage in stages.items()})
    ds = base_dataset(SyntheticIdentity.random(6))
    ds.StudyDescription, ds.PatientSex, ds.StudyInstanceUID = "CT 12345", "M", "1.2.3.4"
    results = {r.profile: r.dataset for r in pipeline.run(ds)}
    assert results["site-b"].StudyInstanceUID == "1.2.3.4" and results["site-b"].PatientSex == "O"
    assert results["site-b"].StudyDescription == "CT 12345"
    assert results["research"].StudyInstanceUID != "1.2.3.4" and results["research"].StudyDescription == "CT"
    assert ds.StudyInstanceUID == "1.2.3.4"  # the original is never modified


def test_every_safe_private_entry_has_sources_and_matches_pydicoms_dictionary():
    data = json.loads(resources.files("gateway.deid").joinpath("data/safe_private.json").read_text())
    for entry in data["attributes"]:
        assert entry["sources"] and entry["why"]
        assert entry["vr"] not in ("PN", "LO", "SH", "LT", "ST", "UT", "DA", "DT", "TM", "UI")
        known = private_dictionaries.get(entry["creator"], {})
        key = f"{entry['group']}xx{entry['element']}".upper().replace("XX", "xx")
        if "pydicom" in entry["sources"]:
            assert key in known, entry


def test_clean_graphics_cleans_annotation_text_and_basic_replaces_it():
    ds = base_dataset(SyntheticIdentity.random(7))
    ds.PatientName, ds.PatientID = "DOE^JOHN", "12345"
    text = Dataset()
    text.UnformattedTextValue = "Lesion DOE 12345"
    text.BoundingBoxAnnotationUnits = "PIXEL"
    annotation = Dataset()
    annotation.GraphicLayer = "L1"
    annotation.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    research, _ = run_stage("research", ds)
    assert research.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "Lesion"
    basic, _ = run_stage("basic", ds)
    assert basic.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED"


def test_clean_structured_content_keeps_codes_and_numbers_and_cleans_text():
    ds = base_dataset(SyntheticIdentity.random(8))
    ds.PatientName, ds.PatientID = "DOE^JOHN", "12345"
    item = Dataset()
    item.ValueType, item.RelationshipType, item.TextValue = "TEXT", "CONTAINS", "Mass seen, Dr note for DOE"
    name = Dataset()
    name.ValueType, name.RelationshipType, name.PersonName = "PNAME", "CONTAINS", "WHO^DR"
    ds.ContentSequence = Sequence([item, name])
    research, _ = run_stage("research", ds)
    assert research.ContentSequence[0].TextValue == "Mass seen, Dr note for"
    assert research.ContentSequence[1].PersonName == "ANONYMIZED"
    basic, _ = run_stage("basic", ds)
    assert basic.ContentSequence[0].TextValue == "ANONYMIZED"


def test_pydicom_warnings_about_bad_values_do_not_reach_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    ds = base_dataset(SyntheticIdentity.random(9))
    ds.add_new(0x0020000D, "UI", "DOE.JOHN.19700101")
    ds.add_new(0x00081030, "LO", "x" * 80 + " DOE JOHN")  # too long for LO
    run_stage("research", copy.deepcopy(ds))
    assert "DOE" not in caplog.text and "19700101" not in caplog.text


def test_a_private_sop_class_is_kept_with_its_file_meta():
    ds = base_dataset(SyntheticIdentity.random(10))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.113619.4.27"
    out, _ = run_stage("basic", ds)
    assert out.SOPClassUID == out.file_meta.MediaStorageSOPClassUID == "1.2.840.113619.4.27"


def test_retain_uids_and_institution_identity_keep_what_they_name():
    config = load_config(overrides={"deid": {"profiles": {"keep-ids": {
        "options": ["retain_uids", "retain_institution_identity"]}}}})
    from gateway.deid.stage import HeaderStage

    ds = base_dataset(SyntheticIdentity.random(11))
    ds.StudyInstanceUID, ds.InstitutionName, ds.InstitutionAddress = "1.2.3.4", "General Hospital", "Main St 1"
    out = HeaderStage(config.deid, "keep-ids", SECRET)(copy.deepcopy(ds), InstanceContext(original=ds))
    assert out.StudyInstanceUID == "1.2.3.4" and out.SOPInstanceUID == ds.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (out.InstitutionName, out.InstitutionAddress) == ("General Hospital", "Main St 1")
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113110", "113112"]
