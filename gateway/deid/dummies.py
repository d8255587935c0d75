"""Dummy values (action D) and empty values (action Z), one per VR.

A dummy must be valid for its VR, non-empty, and obviously not real, so nobody mistakes it for
data; it is the same for every instance, so it carries nothing.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

DUMMY_TEXT = "ANONYMIZED"

_DUMMIES: dict[str, object] = {
    "PN": DUMMY_TEXT,
    "LO": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT,
    "CS": DUMMY_TEXT,
    "AE": DUMMY_TEXT,
    "UR": "",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
    "AT": 0,
    "OB": b"\x00\x00",
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}


def dummy_for(vr: str):
    """Dummy value for ``vr`` (UI and SQ are handled by the engine: new UID, dummy code item)."""
    return _DUMMIES.get(vr, b"\x00\x00" if vr.startswith("O") else DUMMY_TEXT)


def empty_for(vr: str):
    """The zero-length value pydicom writes for ``vr``."""
    if vr == "SQ":
        return Sequence()
    if vr in ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "IS", "DS") or vr.startswith("O") or vr == "UN":
        return None
    return ""


def dummy_code_item() -> Dataset:
    """The single item written when a code sequence gets action D: a code that says nothing."""
    item = Dataset()
    item.CodeValue = "ANON"
    item.CodingSchemeDesignator = "99DEIDGW"
    item.CodeMeaning = DUMMY_TEXT
    return item
