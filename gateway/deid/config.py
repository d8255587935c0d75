"""Settings of header de-identification: profiles, options, overrides, pseudonyms, mapping.

Every setting has a default, so an empty ``deid:`` section gives a working Basic profile. The
built-in profiles (``basic``, ``research``, ``retain-dates``) are always present; config.yaml may
redefine them under the same name or add new ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.deid.private import NOTATION, is_raw_private_tag, parse_private
from gateway.settings_base import Section

OptionName = Literal[
    "clean_graphics",
    "clean_structured_content",
    "clean_descriptors",
    "retain_full_dates",
    "retain_modified_dates",
    "retain_patient_characteristics",
    "retain_device_identity",
    "retain_uids",
    "retain_safe_private",
    "retain_institution_identity",
]


class ReplaceWith(Section):
    """Per-tag override that writes a fixed value (e.g. ``{replace: "SITE-A"}``)."""

    replace: str


# keep | remove | empty, or {replace: VALUE}
TagOverride = Literal["keep", "remove", "empty"] | ReplaceWith


def _checked_private_keys(keys: list[str], where: str) -> None:
    for key in keys:
        if is_raw_private_tag(key):
            raise ValueError(f"{where} {key!r}: name a private attribute by its creator, {NOTATION}")


class ProfileSpec(Section):
    # PS3.15 options applied on top of the Basic Profile.
    options: list[OptionName] = Field(default_factory=list)
    # Per-attribute overrides, keyed by keyword ("StudyDescription") or tag ("(0010,0040)",
    # "00100040"); they win over the table, the options and the unlisted-text rule. A private
    # attribute is named by its creator, '(0019,"SIEMENS MR HEADER",0C)', and its override wins
    # over the safe-private list (and applies with or without retain_safe_private).
    overrides: dict[str, TagOverride] = Field(default_factory=dict)
    # Private attributes this profile also keeps under retain_safe_private, beside the shipped
    # list (gateway/deid/data/safe_private.json), each as '(gggg,"PRIVATE CREATOR",ee)'. A
    # private sequence is never kept by this list (its items could hold anything); an override
    # "keep" keeps one, and its items are de-identified like the rest.
    safe_private: list[str] = Field(default_factory=list)
    # What happens to a public attribute that no row of Table E.1-1 names and whose VR can
    # carry free text or identity (PN, LO, SH, LT, ST, UT, UC, AE, UR, AS): "empty" keeps the
    # attribute with a zero-length value (Type 2 stays valid), "remove" deletes it, "keep"
    # keeps it (not recommended). Coded and technical attributes listed in
    # gateway/deid/data/structural.json are kept (or kept after cleaning, for typed labels).
    unlisted_text: Literal["empty", "remove", "keep"] = "empty"
    # Extra keywords of unlisted text attributes to keep (e.g. ["ConvolutionKernel"]).
    keep_unlisted: list[str] = Field(default_factory=list)
    # The research project this profile's output belongs to (a rule or a destination picks
    # the project by naming the profile). A project has its own subject numbers and its own
    # keyed-hash namespace: pseudonyms, accession numbers, UIDs and date shifts differ from
    # every other project's, so the same patient cannot be linked across two projects' data.
    # Null (or deid.pseudonyms.project itself): the gateway's own project and namespace.
    project: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,24}$")

    @field_validator("overrides")
    @classmethod
    def _private_overrides(cls, value: dict[str, TagOverride]) -> dict[str, TagOverride]:
        _checked_private_keys(list(value), "overrides:")
        for key in value:
            parse_private(key)  # ValueError for an even group written as a private key
        return value

    @field_validator("keep_unlisted")
    @classmethod
    def _public_only(cls, value: list[str]) -> list[str]:
        _checked_private_keys(value, "keep_unlisted:")  # a private attribute goes in safe_private
        return value

    @field_validator("safe_private")
    @classmethod
    def _private_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if parse_private(key) is None:
                raise ValueError(f"safe_private: {key!r} is not {NOTATION}")
        return value


BUILTIN_PROFILES: dict[str, ProfileSpec] = {
    "basic": ProfileSpec(),
    "research": ProfileSpec(
        options=[
            "retain_modified_dates",
            "retain_patient_characteristics",
            "retain_device_identity",
            "clean_descriptors",
            "retain_safe_private",
            "clean_graphics",
            "clean_structured_content",
        ]
    ),
    "retain-dates": ProfileSpec(options=["retain_full_dates"]),
}


class PseudonymConfig(Section):
    # "sequential": numbers allocated in the database, per project; "hash": keyed hash of the
    # original PatientID (also the fallback when no database is available).
    method: Literal["sequential", "hash"] = "sequential"
    project: str = Field(default="DEID", pattern=r"^[A-Za-z0-9_.-]{1,24}$")
    # Python format strings; {project}, {seq} (int) and {hash} (base32, upper case) are available.
    sequential_pattern: str = "{project}-{seq:06d}"
    hash_pattern: str = "{project}-{hash}"
    hash_length: int = Field(default=12, ge=8, le=32)
    # AccessionNumber is replaced by this many characters of a keyed hash (SH: at most 16).
    accession_length: int = Field(default=16, ge=8, le=16)

    @field_validator("sequential_pattern", "hash_pattern")
    @classmethod
    def _ascii(cls, value: str) -> str:
        if not value.isascii() or "^" in value or "\\" in value:
            raise ValueError("pseudonym patterns must be ASCII without '^' or '\\'")
        return value


class MappingConfig(Section):
    # Fernet key (urlsafe base64, 32 bytes) for the pseudonym -> identity table. Read from
    # key_file, else from the environment variable named by key_env. Never stored in the
    # database; without it pseudonyms stay consistent but nothing can be re-identified.
    key_file: Path | None = None
    key_env: str = "DEID_GATEWAY_MAPPING_KEY"


class DateShiftConfig(Section):
    # Retain Longitudinal Modified Dates: each patient's dates move back by a whole number of
    # days between min_days and max_days, chosen by a keyed hash of the original PatientID.
    min_days: int = Field(default=365, ge=1)
    max_days: int = Field(default=3650, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> DateShiftConfig:
        if self.max_days < self.min_days:
            raise ValueError("deid.date_shift.max_days must be >= min_days")
        return self


class DeidConfig(Section):
    # Profile used for destinations that name none.
    profile: str = "basic"
    # Key for every keyed hash (UIDs, pseudonyms, date shifts). The environment variable
    # DEID_GATEWAY_SECRET overrides it; with neither it nor secret_file set, a random key is
    # created once under the storage root and kept there (mode 0600).
    secret: SecretStr | None = None
    secret_file: Path | None = None
    # Text written into DeidentificationMethod (0012,0063).
    method_text: str = Field(default="deid-gateway PS3.15 Annex E", max_length=64)
    # Named profiles; the built-in ones are merged in under any given here.
    profiles: dict[str, ProfileSpec] = Field(default_factory=lambda: dict(BUILTIN_PROFILES))
    pseudonyms: PseudonymConfig = Field(default_factory=PseudonymConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    date_shift: DateShiftConfig = Field(default_factory=DateShiftConfig)

    @field_validator("profiles")
    @classmethod
    def _with_builtins(cls, value: dict[str, ProfileSpec]) -> dict[str, ProfileSpec]:
        return {**BUILTIN_PROFILES, **value}

    @model_validator(mode="after")
    def _default_profile_exists(self) -> DeidConfig:
        if self.profile not in self.profiles:
            raise ValueError(f"deid.profile: unknown profile {self.profile!r}")
        return self
