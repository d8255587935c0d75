"""The PS3.15 profile options and their CID 7050 codes.

The gateway names options in snake case (they appear in config.yaml); the codes are what goes
into DeidentificationMethodCodeSequence, and only for options that were actually applied.
"""

from __future__ import annotations

BASIC = "113100"

# Gateway option name -> (CID 7050 code, code meaning, short name for DeidentificationMethod).
OPTIONS: dict[str, tuple[str, str, str]] = {
    "clean_graphics": ("113103", "Clean Graphics Option", "CleanGraph"),
    "clean_structured_content": ("113104", "Clean Structured Content Option", "CleanSR"),
    "clean_descriptors": ("113105", "Clean Descriptors Option", "CleanDesc"),
    "retain_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option", "FullDates"),
    "retain_modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option", "ModDates"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option", "PatChars"),
    "retain_device_identity": ("113109", "Retain Device Identity Option", "DevId"),
    "retain_uids": ("113110", "Retain UIDs Option", "UIDs"),
    "retain_safe_private": ("113111", "Retain Safe Private Option", "SafePriv"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option", "InstId"),
}

# Declared by other stages (pixel, biometric); the header stage only writes them down.
DECLARED_MEANINGS: dict[str, str] = {
    BASIC: "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113102": "Clean Recognizable Visual Features Option",
    **{code: meaning for code, meaning, _ in OPTIONS.values()},
}

# When both date options are switched on, Modified Dates wins: it is the safer of the two.
PRECEDENCE = [
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_full_dates",
    "retain_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
    "retain_safe_private",
]
"""Order in which option columns are applied to a row: a later option's action replaces an
earlier one's, so cleaning (C) wins over keeping (K) when a row has both (e.g. Allergies:
Retain Patient Characteristics says C, Clean Descriptors says C)."""
