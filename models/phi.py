"""Classify recognised burned-in text as PHI, for redaction decisions and the audit log.

The strongest evidence is the instance's own header: a burned-in string that fuzzily matches the
patient's name parts, IDs, dates (in any format), institution or age is PHI.  Without a header
match, patterns (dates, times, long digit runs, "LAST^FIRST" / "LAST, FIRST") still flag PHI.
Known scanner vocabulary (laterality, probe names, MI/TIS, depth) is "safe".  Only the category is
ever logged, never the text.  The default `Policy` redacts every detected region regardless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Collection, Iterable

CATEGORIES = ("name", "id", "date", "institution", "age", "phi-pattern", "safe", "other")

NAME_TAGS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "ReferringPhysicianName",
             "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
             "PhysiciansOfRecord", "ResponsiblePerson")
ID_TAGS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "IssuerOfPatientID", "AdmissionID",
           "RequestedProcedureID", "PerformedProcedureStepID", "MedicalRecordLocator")
DATE_TAGS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate")
INSTITUTION_TAGS = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
                    "ReferringPhysicianAddress", "PatientAddress")
MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
#: Institution words too common to identify anyone on their own.
GENERIC_WORDS = {"HOSPITAL", "MEDICAL", "CENTER", "CENTRE", "CLINIC", "COMMUNITY", "HEALTH", "UNIVERSITY", "MED",
                 "CTR", "THE", "OF", "AND", "IMAGING", "RADIOLOGY", "DEPT", "DEPARTMENT", "SAINT", "ST", "GENERAL"}
SAFE_TOKENS = {"L", "R", "AP", "PA", "LAT", "LLAT", "RLAT", "LCC", "RCC", "LMLO", "RMLO", "MLO", "CC", "OBL",
               "PORTABLE", "UPRIGHT", "SEMI-UPRIGHT", "SUPINE", "ERECT", "PRONE", "STANDING", "AXIAL", "SAG", "COR",
               "TRANS", "ANT", "POST", "HEAD", "FEET", "RT", "LT", "ABD", "PWR", "THI", "GEN", "CINE", "CRD", "RES",
               "PEN", "CF", "PW", "2D", "FROZEN", "SECTOR", "OFF", "ON", "IZQ", "DER", "SCOUT", "TOPOGRAM", "MI",
               "TIS", "TIB", "TIC", "AO", "DR", "FR", "PRF", "WL", "WW", "KV", "KVP", "MAS", "MA", "SL", "THK", "TR",
               "TE", "FOV", "DFOV", "IM", "SE", "ZOOM", "HR", "BPM", "CM", "MM", "HZ", "DB", "PAGE", "TILT", "G",
               "GN", "P", "C", "M", "B", "PM", "AM", "LIVER", "KIDNEY", "THYROID", "GB", "CBD", "DIST", "AREA", "VOL",
               "VEL", "CONTRAST", "NON-CON", "ARTERIAL", "VENOUS", "WEIGHT", "BEARING", "LYMPH", "NODE",
               # manufacturers: burned into many captures, and nobody's identity
               "SIEMENS", "GE", "MEDICAL", "SYSTEMS", "PHILIPS", "TOSHIBA", "CANON", "HITACHI", "ALOKA", "FUJIFILM",
               "ESAOTE", "SAMSUNG", "MINDRAY", "CARESTREAM", "AGFA", "KONICA"}
#: Acquisition parameters that precede a value ("WW 1163", "MI=0.8", "Im:34"); a value after any
#: other label ("MRN: 696577", "F 23") may identify someone. Single letters take only one digit or
#: a decimal ("C5", "P 1.5"), and M none: "M 81" or "M6" may be a sex and an age.
VALUE_LABELS = {"MI", "TIS", "TIB", "TIC", "AO", "G", "GN", "DR", "FR", "PRF", "WL", "WW", "KV", "KVP", "MAS", "MA",
                "SL", "THK", "TR", "TE", "FOV", "DFOV", "IM", "SE", "ZOOM", "HR", "PAGE", "TILT", "P", "C", "X"}
#: Words that announce an identifying value: text holding one is never safe, whatever follows.
IDENTIFYING_LABELS = {"ID", "MRN", "PID", "ACC", "ACCESSION", "DOB", "AGE", "SEX", "NAME", "PT", "PAT", "PATIENT",
                      "DATE", "TIME", "EXAM", "STUDY", "BIRTH", "REF", "PHYS", "TECH", "OP", "SSN", "NHS"}
#: A value with its unit ("16cm", "8 Hz", "-31°", "68%") is a measurement (str.upper turns µ into Greek Μ).
MEASUREMENT = re.compile(r"^[+\-±]?\d+(?:\.\d+)?\s*(?:CM|MM|HZ|DB|%|KVP?|MAS|MA|BPM|°|[µΜ]M|MM²)$")
#: A bare number is safe only while short: four digits and more may be a year, a time or part of an ID.
SHORT_NUMBER = re.compile(r"^[+\-±X]?(?=(?:\D*\d){1,3}\D*$)\d+(?:\.\d+)?$")
CLOCK_OR_CALENDAR = re.compile(r"\d\s*:\s*\d|\d+\s*[/.\-]\s*\d+\s*[/.\-]\s*\d+")
FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")
LABELLED_VALUE = re.compile(r"^([A-Z]{1,4})\s*[:=<>#]?\s*([+\-]?\d+(?:\.\d+)?)(%?)$")
#: Probe names: "C5-1", "L15-7io", "6C1", "4V1c".
PROBE = re.compile(r"^[A-Z]{1,4}\d{0,2}-\d{1,2}[A-Z]*$|^\d[A-Z]{1,2}\d{1,2}[A-Z]?$")
#: Sex beside an age ("F 23", "M/81Y", "[M]"): demographic, never safe. Also with the O of
#: "other" read as a zero ("0 33", "[0]"), as the recogniser does: two short numbers are otherwise safe.
SEX_AGE = re.compile(r"\[[MFO0]\]"
                     r"|(?<![A-Z0-9])[MFO]\s*[/ ]?\s*\d{1,3}\s*Y?(?![\d.])"
                     r"|(?<![A-Z0-9.])0\s*[/ ]\s*\d{1,3}\s*Y?(?![\d.])"
                     r"|(?<![\d.])\d{1,3}\s*Y\s*[/ ]?\s*[MFO0](?![A-Z])")

DATE_PATTERNS = [
    re.compile(r"(?<!\d)(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})(?!\d)"),  # m/d/y or d.m.y
    re.compile(r"(?<!\d)(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})(?!\d)"),  # y-m-d
    re.compile(r"(?<!\d)(19\d{2}|20\d{2})(\d{2})(\d{2})(?!\d)"),  # yyyymmdd
    re.compile(r"(?<!\d)(\d{4})\s+([A-Z]{3})[A-Z]*\.?\s+(\d{1,2})(?!\d)"),  # 2013 Jul 13
    re.compile(r"(?<!\d)(\d{1,2})[\s\-]([A-Z]{3})[A-Z]*\.?[\s\-,]+(\d{2,4})(?!\d)"),  # 13-JUL-2013, 13 July 2013
    re.compile(r"(?<![A-Z])([A-Z]{3})[A-Z]*\.?\s+(\d{1,2}),?\s+(\d{4})(?!\d)"),  # Jul 13, 2013
]
TIME_PATTERN = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)")
ID_PATTERN = re.compile(r"\d[\d\-]{5,}\d|[A-Z]{1,3}\d{6,}")
AGE_PATTERN = re.compile(r"(?<!\d)(\d{1,3})\s*(?:Y|YRS?|YEARS?|YO)\b|\bAGE:?\s*(\d{1,3})\b")
NAME_PATTERN = re.compile(r"^[A-Z][A-Z'\-]+(?:\^[A-Z'\-]*)+$|^[A-Z][A-Z'\-]+,\s*[A-Z][A-Z'\-]+")


@dataclass
class Identifiers:
    """Identifying values from the instance's own header, normalised for matching."""

    names: list[str] = field(default_factory=list)  # individual name parts, upper case
    ids: list[str] = field(default_factory=list)  # alphanumerics only, upper case
    dates: list[tuple[int, int, int]] = field(default_factory=list)  # (year, month, day)
    institutions: list[str] = field(default_factory=list)
    ages: list[int] = field(default_factory=list)

    @classmethod
    def from_dataset(cls, ds: Any) -> "Identifiers":
        ident = cls()
        for tag in NAME_TAGS:
            for value in _values(ds, tag):
                ident.names.extend(p for p in re.split(r"[\^\s,=.]+", str(value).upper()) if len(p) >= 2)
        for tag in ID_TAGS:
            ident.ids.extend(v for v in (_alnum(x) for x in _values(ds, tag)) if len(v) >= 3)
        for tag in DATE_TAGS:
            for value in _values(ds, tag):
                text = str(value)
                if re.fullmatch(r"\d{8}", text):
                    ident.dates.append((int(text[:4]), int(text[4:6]), int(text[6:8])))
        for tag in INSTITUTION_TAGS:
            ident.institutions.extend(str(v).upper() for v in _values(ds, tag) if str(v).strip())
        for value in _values(ds, "PatientAge"):
            m = re.match(r"(\d{1,3})", str(value))
            if m:
                ident.ages.append(int(m.group(1)))
        ident.names = sorted(set(ident.names))
        ident.ids = sorted(set(ident.ids))
        ident.dates = sorted(set(ident.dates))
        return ident


#: The recogniser's mean confidence below which a reading is no evidence that text may be kept:
#: misreads of PHI ("[M]" read "P", a date read "273") mostly come under 0.6, but recognizer-1.4
#: read a small "[M]" as "P" at 0.72. Chosen on the validation set and (a) (see the model card's
#: "The keep-safe rules"); it costs 3 % of the scanner text kept at 0.7.
KEEP_MIN_CONFIDENCE = 0.8
#: The short side (px) a region needs for its reading to count: under it the text is under 8 px,
#: where the recogniser misreads one character in five, and confidently too (recognizer-1.5 read a
#: 5 px "[M]" as "P" at 0.82). Laterality markers and parameter lines are larger.
KEEP_MIN_REGION_PX = 12


def short_side(region) -> int:
    """The short side of a region (anything with x0, y0, x1, y1): for a line, about its text's height plus margins."""
    return min(region.x1 - region.x0, region.y1 - region.y0)


def may_keep(category: str, confidence: float, region_px: int, keep: Collection[str],
             min_confidence: float = KEEP_MIN_CONFIDENCE, min_region_px: int = KEEP_MIN_REGION_PX) -> bool:
    """The keep-safe rule, the one the gateway applies and the evaluation measures: a region stays
    only when its reading falls in a kept category, the recogniser is sure of it, and the text is
    large enough for that certainty to mean something."""
    return category in keep and confidence >= min_confidence and region_px >= min_region_px


@dataclass(frozen=True)
class Policy:
    """Which categories are redacted. The default redacts every detected region."""

    keep: frozenset[str] = frozenset()
    min_confidence: float = KEEP_MIN_CONFIDENCE
    min_region_px: int = KEEP_MIN_REGION_PX

    def redact(self, category: str) -> bool:
        return category not in self.keep

    def keeps(self, text: str, confidence: float, region_px: int, identifiers: Identifiers | None = None) -> bool:
        """Whether a region (short side ``region_px``) read as ``text`` may stay. An empty or unsure
        reading, or one of text too small to read reliably, may not."""
        return bool(text.strip()) and may_keep(classify(text, identifiers), confidence, region_px, self.keep,
                                               self.min_confidence, self.min_region_px)


DEFAULT_POLICY = Policy()
KEEP_SAFE_POLICY = Policy(keep=frozenset({"safe"}))


def _values(ds: Any, tag: str) -> list:
    value = getattr(ds, tag, None) if ds is not None else None
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [v for v in value if v not in (None, "")]
    return [value]


def _alnum(text: Any) -> str:
    return re.sub(r"[^0-9A-Z]", "", str(text).upper())


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


def _months(name: str) -> list[int]:
    """The month a three-letter abbreviation names, or those one misread letter away ("JUT")."""
    abbreviation = name[:3]
    if abbreviation in MONTHS:
        return [MONTHS[abbreviation]]
    return [n for m, n in MONTHS.items() if sum(x != y for x, y in zip(m, abbreviation)) == 1]


def _date_readings(text: str) -> list[tuple[int, int, int]]:
    """Every (y, m, d) reading of date-like substrings, ambiguous d/m orders included, impossible
    months and days too (a misread "06" may come out "66")."""
    found = []
    upper = text.upper()
    for i, pattern in enumerate(DATE_PATTERNS):
        for m in pattern.finditer(upper):
            a, b, c = m.groups()
            try:
                if i == 0:
                    y = int(c) + (1900 if len(c) == 2 and int(c) > 30 else 2000 if len(c) == 2 else 0)
                    found += [(y, int(a), int(b)), (y, int(b), int(a))]
                elif i in (1, 2):
                    found.append((int(a), int(b), int(c)))
                elif i == 3:
                    found += [(int(a), month, int(c)) for month in _months(b)]
                elif i == 4:
                    found += [(int(c), month, int(a)) for month in _months(b)]
                else:
                    found += [(int(c), month, int(b)) for month in _months(a)]
            except ValueError:
                continue
    return found


def dates_in(text: str) -> list[tuple[int, int, int]]:
    """Every plausible (y, m, d) reading of date-like substrings (ambiguous d/m orders included)."""
    return [d for d in _date_readings(text) if 1 <= d[1] <= 12 and 1 <= d[2] <= 31]


def _matches_date(text: str, dates: Iterable[tuple[int, int, int]]) -> bool:
    """A date in ``text`` that is one of ``dates``, or one misread digit away from one."""
    wanted = [f"{y:04d}{m:02d}{d:02d}" for y, m, d in dates]
    for y, m, d in _date_readings(text):
        if not (0 <= y <= 9999 and 0 <= m <= 99 and 0 <= d <= 99):
            continue
        read = f"{y:04d}{m:02d}{d:02d}"
        if any(sum(x != z for x, z in zip(read, w)) <= 1 for w in wanted):
            return True
    return False


def _ocr_digits(text: str) -> str:
    """Letters the recogniser confuses with digits, read as digits where they stand among digits."""
    text = re.sub(r"(?<=\d)[OQD]|[OQD](?=\d)", "0", text)
    return re.sub(r"(?<=\d)[IL|]|[IL|](?=\d)", "1", text)


def _matches_name(tokens: list[str], names: Iterable[str]) -> bool:
    for token in tokens:
        if len(token) < 3:
            continue
        for name in names:
            if len(name) >= 3 and (token == name or (len(token) >= 4 and _similar(token, name) >= 0.8)):
                return True
            if len(name) >= 4 and len(token) >= len(name) + 2 and name in token:  # "MILLERBEVERLY"
                return True
    return False


def _matches_id(text: str, ids: Iterable[str]) -> bool:
    compact = _alnum(text)
    for value in ids:
        if len(value) < 4:
            continue
        if value in compact:
            return True
        if len(compact) >= len(value) - 1:  # one OCR slip allowed
            for start in range(0, max(1, len(compact) - len(value) + 2)):
                if _similar(compact[start:start + len(value)], value) >= 1 - 1.5 / len(value):
                    return True
    return False


def _matches_institution(tokens: list[str], institutions: Iterable[str]) -> bool:
    for inst in institutions:
        words = [w for w in re.split(r"[^A-Z0-9']+", inst) if len(w) >= 3 and w not in GENERIC_WORDS]
        if words and sum(any(_similar(w, t) >= 0.8 for t in tokens) for w in words) >= max(1, len(words) // 2):
            return True
    return False


def _safe_part(part: str) -> bool:
    """One token or phrase of scanner vocabulary, a measurement, a short number, a probe name or
    an acquisition parameter with its value."""
    part = part.strip()
    if part in SAFE_TOKENS or MEASUREMENT.match(part) or SHORT_NUMBER.match(part) or PROBE.match(part):
        return True
    labelled = LABELLED_VALUE.match(part)
    if not labelled or labelled.group(1) not in VALUE_LABELS:
        return False
    label, value, percent = labelled.groups()
    return len(label) > 1 or "." in value or bool(percent) or len(value.lstrip("+-")) == 1


def _is_safe(text: str, tokens: list[str]) -> bool:
    """Whether every part of ``text`` is known to be harmless. Anything unknown, or a label of
    identifying data, makes the whole line unsafe: keeping it is the policy's only risk."""
    if not tokens or any(t.strip("#:.") in IDENTIFYING_LABELS for t in tokens) or SEX_AGE.search(text):
        return False
    if CLOCK_OR_CALENDAR.search(text):  # "16:03", "5/0/57": a misread time or date is still one
        return False
    if any(len(a) + len(b) > 3 for a, b in FRACTION.findall(text)):  # "014/10" is no page count
        return False
    if all(_safe_part(t) for t in tokens):
        return True
    parts = [p for p in re.split(r"\s{2,}|\s(?=[A-Z]{1,4}[:=<#]?\s?[+\-]?\d)", text.upper().strip()) if p.strip()]
    return bool(parts) and all(_safe_part(p) for p in parts)


def classify(text: str, identifiers: Identifiers | None = None) -> str:
    """Category of one recognised string: name, id, date, institution, age, phi-pattern, safe or other."""
    identifiers = identifiers or Identifiers()
    upper = " ".join(text.upper().split())
    if not upper:
        return "other"
    tokens = [t for t in re.split(r"[\s\^,;:/()\[\]]+", upper) if t]
    alpha_tokens = [re.sub(r"[^A-Z'\-]", "", t) for t in tokens]
    if identifiers.names and _matches_name(alpha_tokens, identifiers.names):
        return "name"
    numeric = _ocr_digits(upper)
    if identifiers.ids and _matches_id(numeric, identifiers.ids):
        return "id"
    found_dates = dates_in(numeric)
    if identifiers.dates and _matches_date(numeric, identifiers.dates):
        return "date"
    if identifiers.institutions and _matches_institution(alpha_tokens, identifiers.institutions):
        return "institution"
    age = AGE_PATTERN.search(upper)
    if age and identifiers.ages and int(age.group(1) or age.group(2)) in identifiers.ages:
        return "age"
    labelled = any(t.strip("#:.") in IDENTIFYING_LABELS for t in tokens) and any(c.isdigit() for c in upper)
    if (found_dates or TIME_PATTERN.search(upper) or ID_PATTERN.search(upper) or NAME_PATTERN.search(upper)
            or age or labelled):
        return "phi-pattern"
    if _is_safe(upper, tokens):
        return "safe"
    return "other"


def redact(text: str, identifiers: Identifiers | None = None, policy: Policy = DEFAULT_POLICY) -> tuple[bool, str]:
    """(redact?, category) for one region under a policy."""
    category = classify(text, identifiers)
    return policy.redact(category), category
