"""What a rule can test: conditions on attributes, and the attributes a match names.

Pure settings; :mod:`gateway.rules.match` compiles them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from gateway.settings_base import Section


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value) if isinstance(value, int | float) else value


class Condition(Section):
    """One test on one attribute. In config.yaml a plain value means ``equals`` and a list
    means ``in``; otherwise exactly one of the operators, optionally negated with ``not``.

    Text is compared without case and without DICOM's padding; a multi-valued attribute
    (ImageType) matches when any one value does, or the whole value joined with backslashes.
    ``regex`` searches anywhere in the value (anchor it with ``^`` and ``$``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    prefix: str | None = None
    regex: str | None = None
    exists: bool | None = None
    not_: bool = Field(default=False, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"in": value}
        if isinstance(value, str | int | float):
            return {"equals": value}
        return value

    @field_validator("equals", "prefix", "in_", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        """YAML reads YES and NO (BurnedInAnnotation's values) as booleans, and 5 as a number:
        they are meant as the text they were written as."""
        if isinstance(value, list):
            return [_text(v) for v in value]
        return None if value is None else _text(value)

    def operators(self) -> list[str]:
        """The operators given (a valid condition has exactly one)."""
        return [name for name in ("equals", "in_", "prefix", "regex", "exists") if getattr(self, name) is not None]


class MatchSpec(Section):
    """What a rule looks at; every condition given must hold (an empty match holds always)."""

    # Who sent the instance: its calling AE title, and its address (addresses or networks).
    calling_ae: Condition | None = None
    address: list[str] | None = None
    # SOP Class UID; equals/in also take pydicom's keywords (SecondaryCaptureImageStorage).
    sop_class: Condition | None = None
    modality: Condition | None = None
    image_type: Condition | None = None
    burned_in_annotation: Condition | None = None
    series_description: Condition | None = None
    study_description: Condition | None = None
    manufacturer: Condition | None = None
    model: Condition | None = None  # ManufacturerModelName
    # Any attribute, by keyword (BodyPartExamined) or tag ("(0009,1001)", "00091001").
    tags: dict[str, Condition] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_address(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("address"), str):
            return {**value, "address": [value["address"]]}
        return value
