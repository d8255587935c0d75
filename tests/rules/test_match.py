"""Rules match on the header as received and on the sender; a bad rule stops start-up naming it."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.uid import SecondaryCaptureImageStorage

from gateway.config import ConfigError, load_config
from gateway.rules.config import RuleSpec
from gateway.rules.match import Facts, compile_rule


def _ds(**values) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = values.pop("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
    ds.Modality = values.pop("Modality", "CT")
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _matches(match: dict, ds: Dataset, calling_ae: str | None = None, address: str | None = None) -> bool:
    rule = compile_rule(RuleSpec(name="r", match=match))
    return rule.matches(Facts(ds, calling_ae, address))


@pytest.mark.parametrize("match, expected", [
    ({}, True),
    ({"modality": "ct"}, True),  # case does not matter
    ({"modality": ["MR", "CT"]}, True),
    ({"modality": {"in": ["MR", "US"]}}, False),
    ({"modality": {"equals": "CT", "not": True}}, False),
    ({"image_type": "SCREEN SAVE"}, True),  # any one value of a multi-valued attribute
    ({"image_type": "DERIVED\\SECONDARY\\SCREEN SAVE"}, True),  # or the whole
    ({"image_type": "PRIMARY"}, False),
    ({"series_description": {"prefix": "dose"}}, True),
    ({"series_description": {"regex": r"report$"}}, True),
    ({"series_description": {"regex": r"^report"}}, False),
    ({"study_description": {"exists": True}}, False),
    ({"study_description": {"exists": False}}, True),
    ({"burned_in_annotation": "YES"}, True),
    ({"manufacturer": {"prefix": "GE "}}, True),
    ({"model": {"regex": "revolution"}}, True),
    ({"sop_class": "SecondaryCaptureImageStorage"}, False),  # keywords are UIDs
    ({"sop_class": {"prefix": "1.2.840.10008.5.1.4.1.1."}}, True),
    ({"tags": {"BodyPartExamined": "CHEST"}}, True),
    ({"tags": {"(0018,0015)": "chest"}}, True),  # BodyPartExamined by tag
    ({"tags": {"00180015": {"exists": True}}}, True),
    ({"tags": {"PatientAge": {"exists": True}}}, False),
    ({"tags": {"ReferencedImageSequence": {"exists": True}}}, True),
    ({"modality": "CT", "burned_in_annotation": "NO"}, False),  # every condition must hold
])
def test_conditions(match, expected):
    from pydicom.sequence import Sequence

    ds = _ds(ImageType=["DERIVED", "SECONDARY", "SCREEN SAVE"], SeriesDescription="Dose Report ",
             BurnedInAnnotation="YES", Manufacturer="GE MEDICAL SYSTEMS", ManufacturerModelName="Revolution CT",
             BodyPartExamined="CHEST", ReferencedImageSequence=Sequence([Dataset()]))
    assert _matches(match, ds) is expected


def test_sop_class_by_keyword_or_uid():
    ds = _ds(SOPClassUID=SecondaryCaptureImageStorage)
    assert _matches({"sop_class": "SecondaryCaptureImageStorage"}, ds)
    assert _matches({"sop_class": [str(SecondaryCaptureImageStorage)]}, ds)


@pytest.mark.parametrize("match, ae, address, expected", [
    ({"calling_ae": "CT_SCANNER"}, "CT_SCANNER", "10.0.0.5", True),
    ({"calling_ae": "MR_SCANNER"}, "CT_SCANNER", "10.0.0.5", False),
    ({"calling_ae": {"prefix": "CT_"}}, "CT_SCANNER", None, True),
    ({"address": "10.0.0.0/24"}, "X", "10.0.0.5", True),
    ({"address": ["192.168.1.1", "10.0.1.0/24"]}, "X", "10.0.0.5", False),
    ({"address": "10.0.0.0/8"}, "X", None, False),  # unknown address: no match
])
def test_sender(match, ae, address, expected):
    assert _matches(match, _ds(), ae, address) is expected


@pytest.mark.parametrize("rules, named", [
    ("[{name: cardio, match: {tags: {SeriesDescripton: x}}}]", "rule 'cardio': unknown keyword 'SeriesDescripton'"),
    ("[{name: cardio, match: {series_description: {regex: '(unclosed'}}}]", "rule 'cardio': bad regular expression"),
    ("[{name: cardio, match: {sop_class: SecondaryCapture}}]", "rule 'cardio': unknown SOP Class"),
    ("[{name: cardio, match: {modality: {prefix: C, regex: C}}}]", "rule 'cardio': match.modality needs exactly one"),
    ("[{name: cardio, match: {address: not-a-network}}]", "rule 'cardio': match.address"),
    ("[{name: cardio, drop: true, profile: research}]", "rule 'cardio': a drop rule takes no profile"),
    ("[{name: cardio, destinations: [elsewhere]}]", "rule 'cardio' names unknown destination 'elsewhere'"),
    ("[{name: cardio, profile: reserch}]", "rule 'cardio' names unknown profile 'reserch'"),
    ("[{name: a}, {name: a}]", "rule names must be unique: 'a'"),
    ("[{use: drop-screenshots, drop: true}]", "rule 'drop-screenshots': use: takes no other setting"),
    ("[{match: {modality: CT}}]", "a rule needs a name"),
])
def test_a_bad_rule_stops_start_up_naming_it(tmp_path, rules, named):
    path = tmp_path / "config.yaml"
    path.write_text(f"rules: {{ordered: {rules}}}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert named in str(error.value)


def test_yaml_booleans_mean_yes_and_no(tmp_path):
    """YAML reads ``burned_in_annotation: YES`` as true: it means the text YES."""
    path = tmp_path / "config.yaml"
    path.write_text("rules: {ordered: [{name: b, match: {burned_in_annotation: YES, modality: [CT, 5]}, drop: true}]}\n")
    (rule,) = load_config(path).rules.ordered
    assert rule.match.burned_in_annotation.equals == "YES" and rule.match.modality.in_ == ["CT", "5"]
    assert compile_rule(rule).matches(Facts(_ds(BurnedInAnnotation="YES")))


def test_the_readme_examples_load(tmp_path):
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)]
    examples = [b for b in blocks if "rules" in b or "pull" in b]
    assert len(examples) >= 2
    for raw in examples:
        raw.setdefault("egress", {})["destinations"] = [
            {"name": "cardio-registry", "ae_title": "REGISTRY", "host": "h", "port": 104}]
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        load_config(path)
