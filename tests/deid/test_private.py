"""Private attributes: the generated safe list, a profile's own additions, and overrides that
name a private attribute by its creator — applied the same way whichever block the creator
landed in, with or without Retain Safe Private, and never by raw tag."""

from __future__ import annotations

import copy
import importlib.util
import re
from importlib import resources
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.config import ConfigError, load_config
from gateway.deid.stage import HeaderStage
from gateway.pipeline.stage import InstanceContext
from tests.deid.canary import SyntheticIdentity, base_dataset

from .conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
SIEMENS = "SIEMENS MR HEADER"


def _tool():
    spec = importlib.util.spec_from_file_location("make_safe_private", ROOT / "tools" / "make_safe_private.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(ds: Dataset, options=("retain_safe_private",), **profile) -> Dataset:
    config = load_config(None, {"deid": {"profiles": {"site": {"options": list(options), **profile}}}})
    stage = HeaderStage(config.deid, "site", SECRET)
    return stage(copy.deepcopy(ds), InstanceContext(original=ds, profile="site"))


def _mr(block: int = 0x10) -> Dataset:
    """Siemens private attributes in creator block ``block`` (0x10 or elsewhere: files differ)."""
    ds = base_dataset(SyntheticIdentity.random(3))
    if block != 0x10:
        ds.add_new(0x00190010, "LO", "SOME OTHER VENDOR")  # pushes the Siemens block along
    siemens = ds.private_block(0x0019, SIEMENS, create=True)
    assert siemens.block_start == block << 8
    siemens.add_new(0x0C, "IS", "1000")  # B_value: on the shipped list
    siemens.add_new(0x18, "IS", "2600")  # RealDwellTime: on the list since it is generated
    siemens.add_new(0x12, "SL", [0, 0, -1200])  # TablePositionOrigin: not on the list
    siemens.add_new(0x0F, "SH", "FAST")  # GradientMode: text, never on the list
    return ds


def test_the_shipped_list_is_what_the_generator_makes(tmp_path):
    out = tmp_path / "safe_private.json"
    _tool().main(ROOT / "tools" / "safe_private_selection.yaml", ROOT / "tools" / "safe_private_ps3_15.txt", out)
    shipped = resources.files("gateway.deid").joinpath("data/safe_private.json").read_text()
    assert out.read_text() == shipped, "run tools/make_safe_private.py"


def test_the_generator_refuses_a_text_attribute(tmp_path):
    selection = tmp_path / "selection.yaml"
    selection.write_text('attributes:\n  - {creator: "SIEMENS MR HEADER", group: "0019", element: "0F", '
                         'why: "gradient mode", sources: [pydicom]}\n')
    standard = tmp_path / "standard.txt"
    standard.write_text("# nothing\n")
    with pytest.raises(SystemExit, match="not safe"):
        _tool().main(selection, standard, tmp_path / "out.json")
    standard.write_text("HOLOGIC, Inc.|7E01|01|LO|Codec Version\n")  # a text row of the table
    selection.write_text("attributes: []\n")
    with pytest.raises(SystemExit, match="not safe"):
        _tool().main(selection, standard, tmp_path / "out.json")


def test_the_list_holds_the_standards_rows_and_the_vendors_documented_ones():
    from gateway.deid.private import SAFE_VALUE_VRS, safe_private

    keys = safe_private()
    assert ("Philips MR Imaging DD 001", 0x2005, 0x0E) in keys  # both: scale slope
    assert ("ELSCINT1", 0x01F1, 0x26) in keys  # PS3.15 Table E.3.10-1: pitch
    assert ("SIEMENS MR HEADER", 0x0019, 0x0A) in keys  # dcm2niix: images in a mosaic
    assert len(keys) > 300
    assert _tool().SAFE_VRS == SAFE_VALUE_VRS - {"UN"}


def test_text_under_a_listed_key_is_removed():
    ds = _mr()
    ds.private_block(0x0019, SIEMENS)[0x0C].VR = "LO"  # a B value that is text
    ds.private_block(0x0019, SIEMENS)[0x0C].value = "SECRET^PATIENT"
    assert 0x0C not in _private(_run(ds))


def _private(out: Dataset) -> dict[int, object]:
    """Element offset -> value of the Siemens block's elements in ``out`` (read from the elements:
    pydicom's private_block() answers from a cache that a deep copy carries over)."""
    start = next(e.tag.element << 8 for e in out if e.tag.group == 0x0019 and e.value == SIEMENS)
    return {e.tag.element & 0xFF: e.value for e in out if e.tag.group == 0x0019 and e.tag.element & 0xFF00 == start}


@pytest.mark.parametrize("block", [0x10, 0x11])
def test_safe_list_and_overrides_apply_in_any_block(block):
    out = _run(_mr(block), overrides={'(0019,"SIEMENS MR HEADER",0C)': "remove",
                                      '(0019,"SIEMENS MR HEADER",xx0F)': {"replace": "NONE"},
                                      '(0019,"SIEMENS MR HEADER",12)': {"replace": "0"}})
    # B_value removed by its override, RealDwellTime kept by the safe list, GradientMode
    # replaced; a text cannot replace a binary number (SL): that one is removed instead.
    assert _private(out) == {0x18: 2600, 0x0F: "NONE"}


def test_an_override_keeps_a_private_attribute_without_the_option():
    out = _run(_mr(), options=(), overrides={'(0019,"SIEMENS MR HEADER",0C)': "keep"})
    assert _private(out) == {0x0C: 1000}
    assert [elem.tag for elem in out if elem.tag.is_private] == [0x00190010, 0x0019100C]


def test_a_profile_adds_its_own_safe_entries_under_the_option_only():
    extra = ['(0019,"SIEMENS MR HEADER",12)']
    assert list(_private(_run(_mr(), safe_private=extra))[0x12]) == [0, 0, -1200]
    assert not any(elem.tag.is_private for elem in _run(_mr(), options=(), safe_private=extra))


def test_empty_keeps_the_attribute_without_its_value():
    out = _run(_mr(), overrides={'(0019,"SIEMENS MR HEADER",0F)': "empty"})
    assert _private(out)[0x0F] in ("", None)
    assert 0x0C in _private(out)  # the rest of the block as the safe list says


def test_a_kept_private_sequence_is_de_identified_inside():
    ds = _mr()
    item = Dataset()
    item.PatientName = "DOE^JANE"
    item.add_new(0x00189087, "FD", 1000.0)
    ds.private_block(0x0019, SIEMENS).add_new(0x30, "SQ", Sequence([item]))
    listed = _run(ds, safe_private=['(0019,"SIEMENS MR HEADER",30)'])
    assert 0x00191030 not in listed  # the safe list never keeps a sequence
    kept = _run(ds, overrides={'(0019,"SIEMENS MR HEADER",30)': "keep"})
    inside = _private(kept)[0x30][0]
    assert inside.PatientName != "DOE^JANE" and inside.DiffusionBValue == 1000.0


@pytest.mark.parametrize("settings, message", [
    ({"overrides": {"(0019,100C)": "keep"}}, "by its creator"),
    ({"overrides": {'(0018,"ACME",0C)': "keep"}}, "odd groups"),
    ({"safe_private": ["(0019,100C)"]}, "PRIVATE CREATOR"),
    ({"keep_unlisted": ["(0019,100C)"]}, "by its creator"),
])
def test_a_private_attribute_is_named_by_its_creator(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, {"deid": {"profiles": {"site": settings}}})
