"""Compiling rules into tests, and running them on an instance's original header.

Pure: a rule (as configured) in, a :class:`CompiledRule` out; a header and its sender in, a yes
or no out. Nothing here logs, and no message built here quotes a value read from a dataset:
errors name the rule and the setting, which come from the site's own configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_network

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary

from gateway.addresses import peer_address
from gateway.rules.builtin import BUILTIN
from gateway.rules.conditions import Condition, MatchSpec

#: The named matchers and the attribute each reads.
KEYWORDS = {
    "sop_class": "SOPClassUID",
    "modality": "Modality",
    "image_type": "ImageType",
    "burned_in_annotation": "BurnedInAnnotation",
    "series_description": "SeriesDescription",
    "study_description": "StudyDescription",
    "manufacturer": "Manufacturer",
    "model": "ManufacturerModelName",
}
#: VRs whose values are bytes, not text: only ``exists`` can say anything about them.
BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\)?$")
_UID = re.compile(r"^[0-9.]+$")
_UID_BY_KEYWORD = {entry[4]: uid for uid, entry in UID_dictionary.items() if entry[4]}


class UnreadableHeader(Exception):
    """An attribute a rule asks about cannot be decoded; carries no value."""


@dataclass(frozen=True)
class Facts:
    """What rules look at: the original header, and who sent it (None when not known)."""

    dataset: Dataset
    calling_ae: str | None = None
    address: str | None = None


Test = Callable[[Facts], bool]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    alternatives: tuple[tuple[Test, ...], ...]  # the rule matches when every test of one holds
    drop: bool = False
    profile: str | None = None
    destinations: tuple[str, ...] | None = None

    def matches(self, facts: Facts) -> bool:
        return any(all(test(facts) for test in tests) for tests in self.alternatives)


def compile_rule(spec) -> CompiledRule:
    """``spec`` (a :class:`gateway.rules.config.RuleSpec`) compiled; ValueError naming the rule."""
    name = spec.name or spec.use
    if name is None:
        raise ValueError("a rule needs a name (or use: one of the built-in rules)")
    if spec.use is not None:
        if spec.name or spec.match != MatchSpec() or spec.drop or spec.profile or spec.destinations is not None:
            raise ValueError(f"rule {spec.use!r}: use: takes no other setting")
        matches = [MatchSpec.model_validate(alternative) for alternative in BUILTIN[spec.use]]
        return CompiledRule(spec.use, tuple(_compile_match(spec.use, m) for m in matches), drop=True)
    if spec.drop and (spec.profile or spec.destinations is not None):
        raise ValueError(f"rule {name!r}: a drop rule takes no profile or destinations")
    if spec.destinations is not None and not spec.destinations:
        raise ValueError(f"rule {name!r}: destinations is empty (use drop: true to send nowhere)")
    destinations = tuple(spec.destinations) if spec.destinations is not None else None
    return CompiledRule(name, (_compile_match(name, spec.match),), spec.drop, spec.profile, destinations)


def _compile_match(rule: str, match: MatchSpec) -> tuple[Test, ...]:
    tests: list[Test] = []
    if match.calling_ae is not None:
        tests.append(_on_text(rule, "calling_ae", match.calling_ae, lambda f: _sender(f.calling_ae)))
    if match.address is not None:
        tests.append(_on_address(rule, match.address))
    for field, keyword in KEYWORDS.items():
        condition = getattr(match, field)
        if condition is not None:
            if field == "sop_class":
                condition = _sop_classes(rule, condition)
            tests.append(_on_attribute(rule, field, condition, tag_for_keyword(keyword)))
    for key, condition in match.tags.items():
        tests.append(_on_attribute(rule, f"tags.{key}", condition, _tag(rule, key)))
    return tuple(tests)


def _tag(rule: str, key: str) -> int:
    found = _TAG.match(key.strip())
    if found:
        return int(found.group(1) + found.group(2), 16)
    tag = tag_for_keyword(key.strip())
    if tag is None:
        raise ValueError(f"rule {rule!r}: unknown keyword {key!r} in match.tags")
    return tag


def _sop_classes(rule: str, condition: Condition) -> Condition:
    """equals/in given as pydicom keywords, turned into UIDs; an unknown keyword is an error."""

    def uid(value: str) -> str:
        if _UID.match(value):
            return value
        if value not in _UID_BY_KEYWORD:
            raise ValueError(f"rule {rule!r}: unknown SOP Class {value!r} in match.sop_class")
        return _UID_BY_KEYWORD[value]

    if condition.equals is not None:
        return condition.model_copy(update={"equals": uid(condition.equals)})
    if condition.in_ is not None:
        return condition.model_copy(update={"in_": [uid(v) for v in condition.in_]})
    return condition


def _predicate(rule: str, where: str, condition: Condition) -> Callable[[bool, list[str]], bool]:
    """(present, values) -> whether ``condition`` holds, case-insensitively."""
    given = condition.operators()
    if len(given) != 1:
        raise ValueError(f"rule {rule!r}: match.{where} needs exactly one of equals, in, prefix, regex, exists")
    if condition.exists is not None:
        wanted = condition.exists
        test = lambda present, values: present == wanted
    elif condition.regex is not None:
        try:
            pattern = re.compile(condition.regex, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"rule {rule!r}: bad regular expression in match.{where} ({exc.msg})") from None
        test = lambda present, values: any(pattern.search(v) for v in values)
    elif condition.prefix is not None:
        start = condition.prefix.casefold()
        test = lambda present, values: any(v.casefold().startswith(start) for v in values)
    else:
        listed = condition.in_ if condition.in_ is not None else [condition.equals]
        allowed = {v.strip().casefold() for v in listed}
        test = lambda present, values: any(v.casefold() in allowed for v in values)
    if condition.not_:
        return lambda present, values: not test(present, values)
    return test


def _on_text(rule: str, where: str, condition: Condition, read: Callable[[Facts], list[str]]) -> Test:
    predicate = _predicate(rule, where, condition)

    def test(facts: Facts) -> bool:
        values = read(facts)
        return predicate(bool(values), values)

    return test


def _sender(value: str | None) -> list[str]:
    value = (value or "").strip()
    return [value] if value else []


def _on_address(rule: str, networks: list[str]) -> Test:
    try:
        parsed = [ip_network(n, strict=False) for n in networks]
    except ValueError:
        raise ValueError(f"rule {rule!r}: match.address holds something that is not an address or network") from None

    def test(facts: Facts) -> bool:
        address = peer_address(facts.address)
        if address is None:
            return False  # not known (batch mode, or a row from before addresses were kept)
        return any(address in network for network in parsed)

    return test


def _on_attribute(rule: str, where: str, condition: Condition, tag: int) -> Test:
    predicate = _predicate(rule, where, condition)

    def test(facts: Facts) -> bool:
        return predicate(*read_attribute(facts.dataset, tag))

    return test


def read_attribute(ds: Dataset, tag: int) -> tuple[bool, list[str]]:
    """Whether ``tag`` is present with a value, and its values as text (each value, then the
    whole joined with backslashes). Raises :class:`UnreadableHeader`, without the value."""
    if tag not in ds:
        return False, []
    try:
        element = ds[tag]
        value = element.value
        if element.VR == "SQ" or element.VR in BINARY_VRS:
            return bool(value), []
        raw = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        values = [str(v).strip(" \x00") for v in raw if v is not None]
    except Exception:  # noqa: BLE001 - a value pydicom cannot decode; its message may quote it
        raise UnreadableHeader() from None
    values = [v for v in values if v]
    if len(values) > 1:
        values.append("\\".join(values))
    return bool(values), values
