"""The decision for one instance: first matching rule, built-in drops, routes, otherwise."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.uid import (
    CTImageStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    XRayRadiationDoseSRStorage,
)

from gateway.config import load_config
from gateway.pipeline.stage import Quarantine
from gateway.rules.router import Decision, Dropped, Router


def _config(rules: list, otherwise: str = "forward"):
    return load_config(None, {
        "egress": {"destinations": [
            {"name": "a", "ae_title": "A", "host": "h", "port": 104},
            {"name": "b", "ae_title": "B", "host": "h", "port": 104, "profile": "research"},
        ]},
        "rules": {"ordered": rules, "otherwise": otherwise},
    })


def _ds(sop_class=CTImageStorage, **values) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = values.pop("Modality", "CT")
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_without_rules_every_destination_gets_its_own_profile():
    router = Router.from_config(_config([]))
    assert router.decide(_ds()) == Decision(None, routes={"basic": ("a",), "research": ("b",)})
    assert router.profiles == ["basic", "research"]


def test_the_first_matching_rule_decides():
    router = Router.from_config(_config([
        {"name": "cardio", "match": {"calling_ae": "CARDIO"}, "profile": "retain-dates", "destinations": ["b"]},
        {"name": "ct-to-a", "match": {"modality": "CT"}, "destinations": ["a"]},
    ]))
    assert router.decide(_ds(), "CARDIO") == Decision("cardio", routes={"retain-dates": ("b",)})
    assert router.decide(_ds(), "OTHER") == Decision("ct-to-a", routes={"basic": ("a",)})
    assert router.decide(_ds(Modality="MR"), "OTHER").rule is None
    assert router.profiles == ["basic", "research", "retain-dates"]


def test_a_profile_without_destinations_applies_to_all_of_them():
    router = Router.from_config(_config([{"name": "all-research", "profile": "research"}]))
    assert router.decide(_ds()).routes == {"research": ("a", "b")}


def test_otherwise_drop_lets_only_what_a_rule_admits_leave():
    router = Router.from_config(_config([{"name": "ct", "match": {"modality": "CT"}}], otherwise="drop"))
    assert router.decide(_ds()).routes == {"basic": ("a",), "research": ("b",)}
    with pytest.raises(Dropped) as dropped:
        router.decide(_ds(Modality="US")).or_raise()
    assert dropped.value.rule == "otherwise"


@pytest.mark.parametrize("builtin, ds", [
    ("drop-screenshots", _ds(SecondaryCaptureImageStorage, Modality="OT")),
    ("drop-screenshots", _ds(MultiFrameTrueColorSecondaryCaptureImageStorage, Modality="OT")),
    ("drop-dose-reports", _ds(XRayRadiationDoseSRStorage, Modality="SR")),
    ("drop-dose-reports", _ds(SeriesDescription="Patient Protocol")),
    ("drop-dose-reports", _ds(SecondaryCaptureImageStorage, Modality="OT", SeriesDescription="DOSE INFO")),
    ("drop-presentation-states", _ds(GrayscaleSoftcopyPresentationStateStorage, Modality="PR")),
    ("drop-key-objects", _ds(KeyObjectSelectionDocumentStorage, Modality="KO")),
])
def test_builtin_drops(builtin, ds):
    router = Router.from_config(_config([{"use": builtin}]))
    assert router.decide(ds) == Decision(builtin, drop=True)
    assert router.decide(_ds(SeriesDescription="CHEST 1.25mm")).rule is None  # a plain CT passes


def test_an_unreadable_attribute_a_rule_needs_quarantines_without_quoting_it():
    from pydicom.dataelem import RawDataElement

    ds = _ds()
    ds[0x00091010] = RawDataElement(0x00091010, "FD", 11, b"PID4711\x00\x00\x00\x00", 0, True, True)
    router = Router.from_config(_config([{"name": "t", "match": {"tags": {"(0009,1010)": "x"}}}]))
    with pytest.raises(Quarantine) as kept:
        router.decide(ds)
    assert "PID4711" not in kept.value.reason
