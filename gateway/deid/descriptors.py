"""Clean Descriptors: keep descriptive text, drop the words that identify.

Study Description, Series Description, Protocol Name and their kind are useful to research and
usually harmless, but operators type names, MRNs and dates into them. Cleaning removes (a) every
word that matches one of the instance's own identifying values (names and their parts, IDs with
and without leading zeros, dates in the common renderings) and (b) anything shaped like a date
or an ID, whoever it belongs to. What is left is the descriptive part ("CT CHEST W CONTRAST").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue

# Attributes of the original instance whose values count as identifying.
NAME_KEYWORDS = (
    "PatientName",
    "PatientBirthName",
    "PatientMotherBirthName",
    "OtherPatientNames",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "ScheduledPerformingPhysicianName",
    "ResponsiblePerson",
)
ID_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "IssuerOfPatientID",
    "MedicalRecordLocator",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
    "PerformedProcedureStepID",
    "AdmissionID",
    "PatientTelephoneNumbers",
    "MilitaryRank",
    "DeviceSerialNumber",
    "InstitutionName",
    "PatientAddress",
    "StationName",
)
DATE_KEYWORDS = (
    "PatientBirthDate",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstanceCreationDate",
    "PerformedProcedureStepStartDate",
)

MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december"
# Shapes that are dates or IDs whoever they belong to.
PATTERNS = [
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",  # 1970-01-01, 1970/1/1
    r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",  # 01/01/1970, 1.1.70
    rf"\b\d{{1,2}}[ -]?(?:{MONTHS})\.?[ -]?\d{{2,4}}\b",  # 1 Jan 1970, 01-JAN-70
    rf"\b(?:{MONTHS})\.? \d{{1,2}},? \d{{4}}\b",  # Jan 1, 1970
    r"\b(?:19|20)\d{6}\b",  # 19700101
    r"\b\d{3}-\d{2}-\d{4}\b",  # SSN-like
    r"(?<!\w)\+?\(?\d{2,4}\)?[-. ]\d{3,4}[-. ]\d{3,4}\b",  # telephone numbers
    r"\b[A-Za-z]{0,4}[-#]?\d{5,}[A-Za-z]{0,2}\b",  # MRN-like: 5+ digits, maybe prefixed
]
_PATTERN = re.compile("|".join(f"(?:{p})" for p in PATTERNS), re.IGNORECASE)


def date_renderings(da: str) -> set[str]:
    """19700101 -> {19700101, 1970-01-01, 01/01/1970, 1/1/1970, 01.01.1970, 1970/01/01, ...}."""
    da = da.strip()
    if len(da) != 8 or not da.isdigit():
        return {da} if da else set()
    y, m, d = da[:4], da[4:6], da[6:8]
    mi, di = str(int(m)), str(int(d))
    out = {da, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}"}
    for mm, dd in ((m, d), (mi, di)):
        out |= {f"{mm}/{dd}/{y}", f"{dd}/{mm}/{y}", f"{dd}.{mm}.{y}", f"{mm}-{dd}-{y}", f"{dd}-{mm}-{y}"}
        out |= {f"{mm}/{dd}/{y[2:]}", f"{dd}/{mm}/{y[2:]}", f"{dd}.{mm}.{y[2:]}"}
    return out


def _values(ds: Dataset, keyword: str) -> list[str]:
    tag = _TAGS[keyword]
    if tag not in ds.keys():  # a plain dict lookup: most keywords are absent from most items
        return []
    value = ds[tag].value
    if value is None or value == "":
        return []
    values = value if isinstance(value, MultiValue) else [value]
    return [str(v) for v in values if str(v).strip()]


_TAGS = {k: tag_for_keyword(k) for k in (*NAME_KEYWORDS, *ID_KEYWORDS, *DATE_KEYWORDS, "PatientAddress")}
_ALL_TAGS = frozenset(_TAGS.values())
# Technical sequences that are large and never hold a person's identity.
_SKIP_SEQUENCES = frozenset({0x52009229, 0x52009230, 0x00540016, 0x30060039, 0x300A00B0, 0x300A0111})


@dataclass(frozen=True)
class IdentityTerms:
    """The identifying strings of one instance, lower-cased, for whole-word matching.

    A set rather than one big regular expression: building it costs nothing per instance, and
    multi-word values ("John Doe") are covered because each of their parts is a term.
    """

    terms: frozenset[str] = frozenset()

    @classmethod
    def from_dataset(cls, ds: Dataset) -> IdentityTerms:
        return cls.from_terms(identity_terms_deep(ds))

    @classmethod
    def from_terms(cls, terms: Iterable[str]) -> IdentityTerms:
        return cls(frozenset(t.lower() for t in terms if len(t) >= 2))

    def matches(self, word: str) -> bool:
        """True if ``word`` (one whitespace-delimited token) is or contains an identity term."""
        if not self.terms:
            return False
        core = word.strip(_PUNCT).lower()
        if core in self.terms:
            return True
        return any(part in self.terms for part in _SEPARATORS.split(core) if part)


_PUNCT = " \t.,;:()[]{}\"'<>!?"
_SEPARATORS = re.compile(r"[\^_,;:()\[\]/=+|]+")
_SPACES = re.compile(r"[ \t]{2,}")


def identity_terms(ds: Dataset) -> set[str]:
    """Names and their parts, IDs (with and without leading zeros), dates in common renderings."""
    terms: set[str] = set()
    if not ds.keys() & _ALL_TAGS:  # most sequence items hold none of them
        return terms
    for keyword in NAME_KEYWORDS:
        for name in _values(ds, keyword):
            text = name.replace("=", "^")
            terms.add(text)
            parts = [p for p in re.split(r"[\^ ,]+", text) if p]
            terms.update(p for p in parts if len(p) >= 2)
            if len(parts) >= 2:
                terms.add(" ".join(parts))
                terms.add(" ".join(reversed(parts[:2])))
    for keyword in ID_KEYWORDS:
        for value in _values(ds, keyword):
            v = value.strip()
            terms.add(v)
            terms.add(v.lstrip("0") or v)
            terms.update(p for p in re.split(r"[\s^,]+", v) if len(p) >= 3)
    for keyword in DATE_KEYWORDS:
        for value in _values(ds, keyword):
            terms |= date_renderings(value)
    for value in _values(ds, "PatientAddress"):
        terms.update(w for w in re.split(r"[\s,^]+", value) if len(w) >= 3)
    return {t for t in terms if t.strip()}


def identity_terms_deep(ds: Dataset, depth: int = 0) -> set[str]:
    """:func:`identity_terms` of ``ds`` and of every sequence item inside it."""
    terms = identity_terms(ds)
    if depth >= 4:
        return terms
    for tag in ds.keys():
        if tag in _SKIP_SEQUENCES:
            continue
        raw = ds.get_item(tag)
        if raw.VR == "SQ" or (raw.VR is None and tag >> 16 & 1 == 0 and _is_sq(tag)):
            for item in ds[tag].value or []:
                terms |= identity_terms_deep(item, depth + 1)
    return terms


def _is_sq(tag: int) -> bool:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def clean_text(text: str, identity: IdentityTerms) -> str:
    """``text`` without identifying words or date/ID shapes, spaces collapsed."""
    if not text:
        return text
    lines = text.splitlines() or [text]
    if identity.terms:
        lines = [" ".join(word for word in line.split() if not identity.matches(word)) for line in lines]
    cleaned = [_SPACES.sub(" ", _PATTERN.sub(" ", line)).strip(" ^,;:-_/") for line in lines]
    return "\r\n".join(cleaned) if len(cleaned) > 1 else cleaned[0]
