"""Compile a profile (Basic + options + overrides) into a tag -> action dict, once.

The engine then decides each element with one dict lookup, which is what makes it fast. Action
codes are the PS3.15 ones plus a few the gateway resolves itself:

- ``X Z D K C U`` as in PS3.15 E.1.1; ``XZ XD ZD XZD`` are resolved per element (see
  engine.resolve and iod_types); X/Z/U* compiles to U (sequence kept, its UIDs replaced).
- ``PID``/``PNAME``: pseudonym; ``ACC``: keyed hash; ``R``: fixed replacement (override).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from pydicom.datadict import dictionary_VR, tag_for_keyword

from gateway.deid.config import DeidConfig, ProfileSpec, ReplaceWith
from gateway.deid.options import OPTIONS
from gateway.deid.private import PrivateKey, parse_private, safe_private
from gateway.deid.table import action_for, load_rows

# Attributes the stage writes itself after cleaning; whatever the input held is replaced.
WRITTEN_BY_STAGE = (0x00120062, 0x00120063, 0x00120064, 0x00280303)
PATIENT_ID, PATIENT_NAME, ACCESSION = 0x00100020, 0x00100010, 0x00080050
TEXT_VALUE, UNFORMATTED_TEXT = 0x0040A160, 0x00700006
TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "UR", "AS"})
DATE_VRS = frozenset({"DA", "DT", "TM"})


@dataclass(frozen=True)
class CompiledProfile:
    name: str
    options: frozenset[str]
    exact: dict[int, str]
    unlisted: dict[str, str]
    replace: dict[int, str] = field(default_factory=dict)
    keep_private: bool = False
    # (creator, group, offset) -> S (safe: kept unless a sequence), K, X, Z or R (override);
    # a private element it does not name is removed.
    private: dict[PrivateKey, str] = field(default_factory=dict)
    private_replace: dict[PrivateKey, str] = field(default_factory=dict)
    # Tags of ``exact`` whose dictionary VR is SQ: a kept sequence is walked without a VR lookup.
    sequences: frozenset[int] = frozenset()

    @property
    def date_mode(self) -> str:
        if "retain_modified_dates" in self.options:
            return "shift"
        if "retain_full_dates" in self.options:
            return "full"
        return "remove"

    @property
    def codes(self) -> list[str]:
        return [OPTIONS[o][0] for o in OPTIONS if o in self.options]


@cache
def structural_tags(kind: str = "keep") -> frozenset[int]:
    """Unlisted attributes that are kept ("keep") or kept but cleaned ("clean"); see the file."""
    text = resources.files("gateway.deid").joinpath("data/structural.json").read_text()
    tags = (tag_for_keyword(k) for k in json.loads(text)[kind])
    return frozenset(t for t in tags if t is not None)


def parse_tag(key: str) -> int:
    """``"StudyDescription"``, ``"(0008,1030)"``, ``"0008,1030"`` or ``"00081030"`` -> int."""
    if (tag := tag_for_keyword(key)) is not None:
        return tag
    digits = re.sub(r"[()\s,]", "", key)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", digits):
        return int(digits, 16)
    raise ValueError(f"deid profile override: {key!r} is neither a keyword nor a tag")


def effective_options(spec: ProfileSpec) -> frozenset[str]:
    """The options that apply: Modified Dates excludes Full Dates (the safer one wins)."""
    options = set(spec.options)
    if "retain_modified_dates" in options:
        options.discard("retain_full_dates")
    return frozenset(options)


def compile_profile(name: str, spec: ProfileSpec) -> CompiledProfile:
    options = effective_options(spec)
    exact: dict[int, str] = {}
    for row in load_rows():
        if not row.is_exact:
            continue  # 50xx, 60xx and private rows are handled by group in the engine
        action, _ = action_for(row, options)
        action = {"X/Z": "XZ", "X/Z/U*": "U", "X/D": "XD", "Z/D": "ZD", "X/Z/D": "XZD"}.get(action, action)
        exact[row.tag_int] = action

    # Identity is replaced by pseudonyms and keyed hashes rather than emptied (see pseudonyms.py).
    exact[PATIENT_ID] = "PID"
    exact[PATIENT_NAME] = "PNAME"
    exact[ACCESSION] = "ACC"
    # Free text of SR content items and of graphic annotations: not rows of the table, but the
    # values that Content Sequence (D / C) and Graphic Annotation Sequence (D / C) are about.
    exact[TEXT_VALUE] = "C" if "clean_structured_content" in options else "D"
    exact[UNFORMATTED_TEXT] = "C" if "clean_graphics" in options else "D"
    for tag in WRITTEN_BY_STAGE:
        exact[tag] = "K"

    date_action = {"shift": "C", "full": "K", "remove": "Z"}[
        "shift" if "retain_modified_dates" in options else "full" if "retain_full_dates" in options else "remove"
    ]
    text_action = {"empty": "Z", "remove": "X", "keep": "K"}[spec.unlisted_text]
    unlisted = {vr: text_action for vr in TEXT_VRS}
    if "retain_patient_characteristics" in options:
        unlisted["AS"] = "K"
    unlisted.update({vr: date_action for vr in DATE_VRS})
    unlisted["UI"] = "K" if "retain_uids" in options else "U?"  # U? = keep registered UIDs
    unlisted["UN"] = "X"

    for tag in structural_tags("keep") | {parse_tag(k) for k in spec.keep_unlisted}:
        exact.setdefault(tag, "K")
    for tag in structural_tags("clean"):
        exact.setdefault(tag, "C")

    keep_private = "retain_safe_private" in options
    private: dict[PrivateKey, str] = {}
    if keep_private:
        private = dict.fromkeys(safe_private() | {parse_private(k) for k in spec.safe_private}, "S")
    replace, private_replace = _apply_overrides(spec, exact, private)
    return CompiledProfile(
        name=name,
        options=options,
        exact=exact,
        unlisted=unlisted,
        replace=replace,
        keep_private=keep_private,
        private=private,
        private_replace=private_replace,
        sequences=frozenset(t for t in exact if vr_of(t) == "SQ"),
    )


def _apply_overrides(spec: ProfileSpec, exact: dict[int, str],
                     private: dict[PrivateKey, str]) -> tuple[dict[int, str], dict[PrivateKey, str]]:
    """Write the profile's overrides over the table's actions (public tags into ``exact``,
    private attributes, by creator, into ``private``); returns their replacement values."""
    replace: dict[int, str] = {}
    private_replace: dict[PrivateKey, str] = {}
    for key, override in spec.overrides.items():
        private_key = parse_private(key)
        codes, values = (private, private_replace) if private_key else (exact, replace)
        target = private_key or parse_tag(key)
        if isinstance(override, ReplaceWith):
            codes[target], values[target] = "R", override.replace
        else:
            codes[target] = {"keep": "K", "remove": "X", "empty": "Z"}[override]
    return replace, private_replace


def compile_profiles(config: DeidConfig) -> dict[str, CompiledProfile]:
    return {name: compile_profile(name, spec) for name, spec in config.profiles.items()}


def vr_of(tag: int) -> str:
    """The data dictionary VR of a public tag; 'UN' when unknown, the first of 'US or SS'."""
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"
