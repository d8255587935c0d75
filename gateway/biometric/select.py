"""Which instances the biometric stage anonymizes: chest radiographs, as the header tells.

An instance is a chest radiograph when its Modality is one of ``biometric.modalities`` (CR, DX),
its BodyPartExamined one of ``biometric.body_parts`` (CHEST) and its ViewPosition, when present,
one of ``biometric.views`` (PA, AP: the frontal views the generator was trained on). Otherwise it
passes unchanged and the audit counts why, in the fixed words below. A CR/DX instance that does
not state its body part is held back by default (``biometric.unstated_body_part``): a destination
that asked for biometric anonymization should not receive a chest radiograph without it because
a header was silent. Decisions read only the header, never the pixels, and reasons never quote a
value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydicom import Dataset

from gateway.biometric.config import BiometricConfig

MONO = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class Verdict:
    action: Literal["apply", "skip", "quarantine"]
    # A count's name for "skip" and "apply" (instances_skipped_<key>), the reason for "quarantine".
    key: str


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip().upper()


def judge(ds: Dataset, config: BiometricConfig) -> Verdict:
    """Anonymize, pass unchanged (and why), or hold back (and why)."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return Verdict("skip", "no_pixel_data")
    if _text(ds, "Modality") not in {m.upper() for m in config.modalities}:
        return Verdict("skip", "not_radiograph")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return Verdict("skip", "multiframe")
    body_part = _text(ds, "BodyPartExamined")
    view = _text(ds, "ViewPosition")
    if body_part and body_part not in {b.upper() for b in config.body_parts}:
        return Verdict("skip", "not_chest")
    if view and view not in {v.upper() for v in config.views}:
        return Verdict("skip", "not_frontal")
    if not body_part:
        if config.unstated_body_part == "skip":
            return Verdict("skip", "body_part_unstated")
        if config.unstated_body_part == "quarantine":
            return Verdict("quarantine", "body part not stated; biometric anonymization cannot tell a chest radiograph")
    if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1) or 1) != 1 or _text(ds, "PhotometricInterpretation") not in MONO:
        return Verdict("quarantine", "biometric anonymization needs a greyscale integer image")
    return Verdict("apply", "view_unstated" if not view else "chest_radiograph")
