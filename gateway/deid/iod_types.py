"""Just enough IOD knowledge to resolve the combined actions (X/D, Z/D, X/Z/D).

PS3.15 resolves X/D by the attribute's type in the instance's IOD: X where it is Type 3, Z where
Type 2, D where Type 1. The gateway does not carry all of PS3.3; it knows the attributes below to
be Type 3 in the classic (non-enhanced) IODs listed, and falls back to the choice that is valid
in every IOD otherwise: D (a dummy value) when the attribute holds a value, nothing when it is
already empty. Either way no original value survives.

Sources: PS3.3 C.7.3.1 General Series, C.7.5.1 General Equipment, C.12.1 SOP Common, C.7.6.1
General Image, C.8.8 RT modules (PS3.3 2025a). PET Series (C.8.9.1) makes Series Date/Time
Type 1, so PET is left out of those two rows. X/Z needs no knowledge: Z is valid wherever X is.
"""

from __future__ import annotations

_CT, _MR, _CR, _DX, _MG = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2"
_US, _USMF, _SC, _NM, _PET = "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.128"
_XA, _RF, _RTIMG, _RTDOSE, _RTSS, _RTPLAN = (
    "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.12.2",
    "1.2.840.10008.5.1.4.1.1.481.1",
    "1.2.840.10008.5.1.4.1.1.481.2",
    "1.2.840.10008.5.1.4.1.1.481.3",
    "1.2.840.10008.5.1.4.1.1.481.5",
)
_CLASSIC = frozenset({_CT, _MR, _CR, _DX, _MG, _US, _USMF, _SC, _NM, _PET, _XA, _RF, _RTIMG, _RTDOSE, _RTSS, _RTPLAN})
_CLASSIC_NOT_PET = _CLASSIC - {_PET}
_RT = frozenset({_RTIMG, _RTDOSE, _RTSS, _RTPLAN})
_ANY = None  # Type 3 in every IOD that has the attribute

# tag -> SOP classes in which it is known to be Type 3 (None: all of them).
TYPE3_IN: dict[int, frozenset[str] | None] = {
    0x00080012: _ANY,  # Instance Creation Date (SOP Common)
    0x00080013: _ANY,  # Instance Creation Time (SOP Common)
    0x00080021: _CLASSIC_NOT_PET,  # Series Date
    0x00080031: _CLASSIC_NOT_PET,  # Series Time
    0x0008002A: _CLASSIC,  # Acquisition DateTime (General Image)
    0x00081010: _CLASSIC,  # Station Name (General Equipment)
    0x00081070: _CLASSIC - _RT,  # Operators' Name (General Series; Type 2 in RT Series)
    0x00080080: _CLASSIC,  # Institution Name (General Equipment)
    0x00080082: _CLASSIC,  # Institution Code Sequence
    0x00181000: _CLASSIC,  # Device Serial Number (General Equipment)
    0x00181030: _CLASSIC,  # Protocol Name (General Series)
    0x00181400: _CLASSIC,  # Acquisition Device Processing Description (CR/DX)
    0x0018700A: _CLASSIC,  # Detector ID (DX Detector)
    0x0018700C: _CLASSIC,  # Date of Last Detector Calibration
    0x0018700E: _CLASSIC,  # Time of Last Detector Calibration
    0x00081072: _CLASSIC,  # Operator Identification Sequence
}


def is_type3(tag: int, sop_class_uid: str) -> bool:
    """True when ``tag`` is known to be Type 3 in the IOD of ``sop_class_uid``."""
    if tag not in TYPE3_IN:
        return False
    classes = TYPE3_IN[tag]
    return classes is None or sop_class_uid in classes


# Sequences that PS3.15 lets be emptied (X/Z, X/Z/D) and that are Type 2 in the IODs that have
# them; every other such sequence is removed, since an empty sequence is invalid where the
# module asks for one or more items (e.g. Referenced Study Sequence, Type 3, 1-n items).
TYPE2_SEQUENCES = frozenset({
    0x00400555,  # Acquisition Context Sequence (Acquisition Context module, Type 2)
})


def is_type2_sequence(tag: int) -> bool:
    return tag in TYPE2_SEQUENCES
