"""What an output says of its own de-identification (PS3.15 E.1.1, CID 7050).

PatientIdentityRemoved, DeidentificationMethod with the options by name,
DeidentificationMethodCodeSequence with the codes of the profile's options and of the options
other stages declared (Clean Pixel Data), and LongitudinalTemporalInformationModified.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from gateway.deid.options import BASIC, DECLARED_MEANINGS, OPTIONS
from gateway.deid.profiles import CompiledProfile


def add_method_notes(ds: Dataset, notes: Iterable[str]) -> None:
    """Append the stages' notes (``InstanceContext.note_method``) to DeidentificationMethod."""
    notes = list(notes)
    if not notes:
        return
    element = ds[0x00120063]
    values = list(element.value) if element.VM > 1 else [element.value]
    ds[0x00120063] = DataElement(0x00120063, "LO", values + notes)


def applied_options(profile: CompiledProfile) -> list[str]:
    """Every option the profile enabled ran over the whole instance (see options.PRECEDENCE)."""
    return [name for name in OPTIONS if name in profile.options]


_CODE_VALUE, _SCHEME, _MEANING = Tag(0x00080100), Tag(0x00080102), Tag(0x00080104)


def _element(tag: BaseTag, vr: str, value: str) -> DataElement:
    """A new element from a value the gateway made itself (known valid: no validation pass)."""
    return DataElement(tag, vr, value, already_converted=True, validation_mode=pydicom_config.IGNORE)


def write_method(ds: Dataset, profile: CompiledProfile, method_text: str,
                 options: list[str], declared: Iterable[str]) -> None:
    """PatientIdentityRemoved, DeidentificationMethod (+ code sequence), temporal flag.

    Elements are built directly (not through keyword attributes): this runs for every instance.
    """
    ds[0x00120062] = DataElement(0x00120062, "CS", "YES")
    values = [method_text]
    line = "Options:"
    for option in options:  # option names on as many 64-character values as they need
        name = OPTIONS[option][2]
        if len(line) + 1 + len(name) > 64:
            values.append(line)
            line = name
        else:
            line = f"{line} {name}"
    if options:
        values.append(line)
    ds[0x00120063] = DataElement(0x00120063, "LO", values if len(values) > 1 else values[0])
    own = [OPTIONS[o][0] for o in options]
    codes = [BASIC] + sorted(set(declared) - set(own) - {BASIC}) + own
    items = [
        Dataset({
            _CODE_VALUE: _element(_CODE_VALUE, "SH", code),
            _SCHEME: _element(_SCHEME, "SH", "DCM"),
            _MEANING: _element(_MEANING, "LO", DECLARED_MEANINGS.get(code, code)[:64]),
        })
        for code in codes
    ]
    ds[0x00120064] = DataElement(0x00120064, "SQ", Sequence(items))
    flag = {"shift": "MODIFIED", "full": "UNMODIFIED"}.get(profile.date_mode, "REMOVED")
    ds[0x00280303] = DataElement(0x00280303, "CS", flag)
