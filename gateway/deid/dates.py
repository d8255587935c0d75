"""Retain Longitudinal Modified Dates: one whole-day shift per patient.

The offset comes from a keyed hash of the original PatientID, so every instance of a patient,
in every study, on every worker, moves by the same number of days: intervals between dates are
preserved, and nobody without the secret can recover the offset. The shift is a whole number of
days, so times of day (TM) and the time part of DT stay as they are and a DA/TM pair stays
consistent with the matching DT.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydicom.multival import MultiValue

from gateway import keys


def offset_days(patient_key: str, secret: bytes, min_days: int, max_days: int) -> int:
    """A negative number of days in [-max_days, -min_days], stable for (patient, secret)."""
    digest = keys.keyed_hash(secret, keys.DATE_SHIFT, patient_key.encode("utf-8"))
    span = max_days - min_days + 1
    return -(min_days + int.from_bytes(digest[:8], "big") % span)


def _shift_date_text(text: str, days: int) -> str | None:
    """Shift YYYY, YYYYMM or YYYYMMDD (the DA forms and the date part of DT); None if unparsable."""
    digits = text.strip()
    if not digits.isdigit() or len(digits) not in (4, 6, 8):
        return None
    year = int(digits[:4])
    month = int(digits[4:6]) if len(digits) >= 6 else 1
    day = int(digits[6:8]) if len(digits) == 8 else 1
    try:
        shifted = date(year, month, day) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    full = f"{shifted.year:04d}{shifted.month:02d}{shifted.day:02d}"
    return full[: len(digits)]


def shift_da(value: str, days: int) -> str | None:
    """A DA value, a legacy "YYYY.MM.DD" one or a range "A-B"; None when it cannot be shifted."""
    text = value.strip().replace(".", "")
    if not text:
        return ""
    if "-" in text:
        parts = text.split("-", 1)
        shifted = [_shift_date_text(p, days) if p else "" for p in parts]
        if any(s is None for s in shifted):
            return None
        return "-".join(shifted)  # type: ignore[arg-type]
    return _shift_date_text(text, days)


def shift_dt(value: str, days: int) -> str | None:
    """A DT value: the date part moves, time, fraction and UTC offset stay."""
    text = value.strip()
    if not text:
        return ""
    suffix = ""
    for sign in ("+", "-"):
        pos = text.find(sign, 4)
        if pos != -1:
            text, suffix = text[:pos], text[pos:]
            break
    date_part, rest = text[:8], text[8:]
    if len(date_part) < 8:
        date_part, rest = text[: len(text) if len(text) in (4, 6) else 0], ""
    shifted = _shift_date_text(date_part, days)
    if shifted is None:
        return None
    return shifted + rest + suffix


def shift_value(vr: str, value, days: int):
    """Shift a DA or DT value, single or multi-valued; TM is returned as is. None: unparsable."""
    if vr == "TM":
        return value
    shifter = shift_da if vr == "DA" else shift_dt
    if isinstance(value, (list, MultiValue)):
        out = [shifter(str(v), days) for v in value]
        return None if any(v is None for v in out) else out
    return shifter(str(value), days)
