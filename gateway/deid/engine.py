"""The header de-identification walk: one pass over the dataset, nested sequences included.

Pure: a dataset and a compiled profile in, the same dataset edited in place out, plus counts
per action. Elements that are kept are never decoded (raw elements stay raw), which is both why
the walk is fast and why Pixel Data bytes are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from gateway.deid.dates import offset_days, shift_value
from gateway.deid.descriptors import IdentityTerms, clean_text
from gateway.deid.dummies import DUMMY_TEXT, dummy_code_item, dummy_for, empty_for
from gateway.deid.iod_types import is_type2_sequence, is_type3
from gateway.deid.method import applied_options, write_method
from gateway.deid.private import SAFE_VALUE_VRS, creator_of
from gateway.deid.profiles import CompiledProfile, vr_of
from gateway.deid.uids import remap_uid
from gateway.logs import quiet_pydicom
from gateway.pipeline.stage import Quarantine

# File meta elements that name the sender; the rest of the group is structural.
FILE_META_DROP = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
MAX_DEPTH = 64
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: VRs an override's replacement text can be written into.
REPLACEABLE_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"})


class PseudonymSource:
    """What the engine needs from the pseudonym service (see pseudonyms.PseudonymService)."""

    def patient(self, patient_id: str, patient_name: str) -> str:  # pragma: no cover - protocol
        raise NotImplementedError

    def accession(self, value: str) -> str:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass
class EngineResult:
    counts: dict[str, int] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)  # gateway option names applied


@dataclass
class DeidSettings:
    method_text: str = "deid-gateway PS3.15 Annex E"
    shift_min_days: int = 365
    shift_max_days: int = 3650


class _Run:
    """State of one instance's walk (counts, the date offset, the identity terms)."""

    def __init__(self, profile: CompiledProfile, secret: bytes, pseudonyms: PseudonymSource,
                 settings: DeidSettings, original: Dataset, top: Dataset):
        self.profile = profile
        self.exact = profile.exact
        self.unlisted = profile.unlisted
        self.secret = secret
        self.pseudonyms = pseudonyms
        self.settings = settings
        self.original = original
        self.counts: dict[str, int] = {}
        self.sop_class = str(top.get("SOPClassUID", "") or "")
        self.patient_id = _text(top, 0x00100020)
        self.patient_name = _text(top, 0x00100010)
        self._days: int | None = None
        self._identity: IdentityTerms | None = None

    # -- lazily computed facts -------------------------------------------------------------
    @property
    def days(self) -> int:
        if self._days is None:
            key = self.patient_id or f"name:{self.patient_name}"
            self._days = offset_days(key, self.secret, self.settings.shift_min_days, self.settings.shift_max_days)
        return self._days

    @property
    def identity(self) -> IdentityTerms:
        if self._identity is None:
            self._identity = IdentityTerms.from_dataset(self.original)
        return self._identity

    def count(self, action: str) -> None:
        self.counts[action] = self.counts.get(action, 0) + 1

    # -- the walk --------------------------------------------------------------------------
    def walk(self, ds: Dataset, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError("sequences nested too deep")
        exact, unlisted, sequences = self.exact, self.unlisted, self.profile.sequences
        private: list[int] = []
        for tag in list(ds.keys()):
            group = tag >> 16
            if group & 1:
                private.append(tag)
                continue
            action = exact.get(tag)
            if action is None:
                if (tag & 0xFFFF) == 0 or 0x5000 <= group <= 0x60FF and (group & 0xFF00) in (0x5000, 0x6000):
                    action = "X"  # group lengths; curves (50xx) and overlays (60xx), all of them
                elif group == 0x0002:
                    action = "K"
                else:
                    action = unlisted.get(self.vr(ds, tag), "K")
            if action == "K":
                self.count("K")
                if tag in sequences or (tag not in exact and self.vr(ds, tag) == "SQ"):
                    self.items(ds, tag, depth)
            elif action == "X":
                del ds[tag]
                self.count("X")
            else:
                self.apply(ds, tag, action, depth)
        if private:
            self.privates(ds, private, depth)

    def items(self, ds: Dataset, tag: int, depth: int) -> None:
        value = ds[tag].value
        if value:
            for item in value:
                self.walk(item, depth + 1)

    def vr(self, ds: Dataset, tag: int) -> str:
        """The element's VR; for implicit, ambiguous or UN-encoded public tags, the dictionary's.

        pydicom decodes a UN-encoded public element with its dictionary VR (on access), so
        the action must be chosen for that VR too.
        """
        vr = ds.get_item(tag).VR
        if vr is None or vr == "UN" or " or " in vr:
            return vr_of(tag) if not tag >> 16 & 1 else "UN"
        return vr

    def apply(self, ds: Dataset, tag: int, action: str, depth: int) -> None:
        vr = self.vr(ds, tag)
        if action in ("XZ", "XD", "ZD", "XZD"):
            action = self.resolve(ds, tag, vr, action)
            if action == "X":
                del ds[tag]
                self.count("X")
                return
        if action == "Z":
            self.set(ds, tag, vr, empty_for(vr))
            self.count("Z")
        elif action == "D":
            self.dummy(ds, tag, vr, depth)
        elif action == "U" or action == "U?":
            self.uid(ds, tag, vr, depth, registered_kept=action == "U?")
        elif action == "C":
            self.clean(ds, tag, vr, depth)
        elif action == "PID":
            if depth == 0:
                # Always written at the top level, so every output names its research subject.
                self.set(ds, tag, "LO", self.pseudonyms.patient(self.patient_id, self.patient_name))
            elif ds[tag].value:
                ds[tag].value = self.pseudonyms.patient(str(ds[tag].value), "")
            self.count("D")
        elif action == "PNAME":
            if depth == 0:
                self.set(ds, tag, "PN", self.pseudonyms.patient(self.patient_id, self.patient_name))
                self.count("D")
            else:
                self.set(ds, tag, vr, "")
                self.count("Z")
        elif action == "ACC":
            if ds[tag].value:
                ds[tag].value = self.pseudonyms.accession(str(ds[tag].value))
            self.count("D")
        elif action == "R":
            self.set(ds, tag, vr, self.profile.replace[tag])
            self.count("D")
        else:  # pragma: no cover - compile_profile only emits the codes above
            raise ValueError(f"unknown action {action}")

    def resolve(self, ds: Dataset, tag: int, vr: str, action: str) -> str:
        """X/Z, X/D, Z/D, X/Z/D: see iod_types.

        A present but empty sequence is invalid wherever the module asks for 1-n items, so
        sequences are removed unless known to be Type 2 (then emptied).
        """
        if vr == "SQ":
            return "Z" if "Z" in action and is_type2_sequence(tag) else "X"
        if action == "XZ":
            return "Z"
        if action != "ZD" and is_type3(tag, self.sop_class):
            return "X"
        elem = ds[tag]
        if elem.value in (None, "", b"") or elem.VM == 0:
            return "Z"
        return "D"

    def set(self, ds: Dataset, tag: int, vr: str, value) -> None:
        ds[tag] = DataElement(tag, vr, value)

    def dummy(self, ds: Dataset, tag: int, vr: str, depth: int) -> None:
        self.count("D")
        if vr == "UI":
            self.uid(ds, tag, vr, depth, registered_kept=False, counted=True)
        elif vr == "SQ":
            keyword = ds[tag].keyword
            if keyword.endswith("CodeSequence"):
                self.set(ds, tag, vr, Sequence([dummy_code_item()]))
            else:
                self.items(ds, tag, depth)
        else:
            self.set(ds, tag, vr, dummy_for(vr))

    def uid(self, ds: Dataset, tag: int, vr: str, depth: int, registered_kept: bool, counted: bool = False) -> None:
        if vr == "SQ":
            if not counted:
                self.count("U")
            self.items(ds, tag, depth)
            return
        if vr != "UI":
            if not counted:
                self.count("K" if registered_kept else "X")
            if not registered_kept:
                del ds[tag]
            return
        values = _uid_values(ds, tag)
        if not values or (registered_kept and all(v in UID_dictionary for v in values)):
            if not counted:
                self.count("K")
            return
        new = [v if (registered_kept and v in UID_dictionary) or not v else remap_uid(v, self.secret) for v in values]
        ds[tag] = DataElement(tag, "UI", new if len(new) > 1 else new[0])
        if not counted:
            self.count("U")

    def clean(self, ds: Dataset, tag: int, vr: str, depth: int) -> None:
        """C: dates shift, sequences are walked, text loses identifying words."""
        self.count("C")
        if vr == "SQ":
            self.items(ds, tag, depth)
            return
        elem = ds[tag]
        value = elem.value
        if value in (None, "", b""):
            return
        if vr in ("DA", "DT", "TM"):
            if self.profile.date_mode == "shift":
                shifted = shift_value(vr, value, self.days)
                if shifted is None:
                    self.set(ds, tag, vr, "")
                else:
                    elem.value = shifted
            elif self.profile.date_mode != "full":
                self.set(ds, tag, vr, "")
            return
        if vr == "UI":
            self.uid(ds, tag, vr, depth, registered_kept=True, counted=True)
            return
        if vr == "PN":
            self.set(ds, tag, vr, DUMMY_TEXT)
            return
        if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS"):
            values = list(value) if isinstance(value, MultiValue) else [value]
            cleaned = [clean_text(str(v), self.identity) for v in values]
            if vr == "CS":
                cleaned = [c.upper()[:16] for c in cleaned]
            elem.value = cleaned if len(cleaned) > 1 else cleaned[0]
            return
        if vr in ("AE", "UR", "AS"):
            self.set(ds, tag, vr, "")
        elif vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            # Binary values (Maker Note, Certified Timestamp...) cannot be cleaned, only dropped.
            del ds[tag]
        # numbers: kept

    def privates(self, ds: Dataset, tags: list[int], depth: int) -> None:
        """Private elements, after the public ones: each decided by its creator's key in the
        profile (the safe list, the overrides), removed when not named; a creator element stays
        while its block keeps something."""
        decided = self.profile.private
        if not decided:
            for tag in tags:
                del ds[tag]
            self.counts["X"] = self.counts.get("X", 0) + len(tags)
            return
        kept_blocks: set[int] = set()
        creators: list[int] = []
        for tag in tags:
            elem = tag & 0xFFFF
            if 0x0010 <= elem <= 0x00FF:
                creators.append(tag)
                continue
            creator = creator_of(ds, tag) if elem >= 0x1000 else None
            key = (creator, tag >> 16, elem & 0xFF)
            if creator is not None and self.private(ds, tag, key, decided.get(key, "X"), depth):
                kept_blocks.add(((tag >> 16) << 16) | (elem >> 8))
            else:
                del ds[tag]
                self.count("X")
        for tag in creators:
            if tag in kept_blocks:
                self.count("K")
            else:
                del ds[tag]
                self.count("X")

    def private(self, ds: Dataset, tag: int, key, action: str, depth: int) -> bool:
        """Apply ``action`` to one private element; False when it is to be removed."""
        vr = self.vr(ds, tag)
        if action == "X" or action == "S" and vr not in SAFE_VALUE_VRS:
            return False  # a listed key never keeps a sequence, text, a UID or bytes
        if action in ("S", "K"):
            self.count("K")
            if vr == "SQ":
                self.items(ds, tag, depth)
        elif action == "Z":
            self.set(ds, tag, vr, empty_for(vr))
            self.count("Z")
        elif vr in REPLACEABLE_VRS:  # R
            self.set(ds, tag, vr, self.profile.private_replace[key])
            self.count("D")
        else:
            return False  # a replacement text cannot go into a binary or numeric value
        return True


def _uid_values(ds: Dataset, tag: int) -> list[str]:
    """The UIDs of a UI element, read from the raw bytes when the element was never decoded
    (UIDs are ASCII in every character set, so pydicom's full conversion is not needed)."""
    elem = ds.get_item(tag)
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return []
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        values = [v.strip(" \x00") for v in text.split("\\")]
    else:
        value = elem.value
        if value in (None, ""):
            return []
        values = [str(v) for v in value] if isinstance(value, MultiValue) else [str(value)]
    return values if any(values) else []


def _text(ds: Dataset, tag: int) -> str:
    elem = ds.get(tag)
    if elem is None or elem.value is None:
        return ""
    return str(elem.value).strip()


def deidentify(ds: Dataset, profile: CompiledProfile, secret: bytes, pseudonyms: PseudonymSource,
               settings: DeidSettings | None = None, original: Dataset | None = None,
               declared: Iterable[str] = ()) -> EngineResult:
    """De-identify ``ds`` in place under ``profile``; returns counts per action, never values."""
    with quiet_pydicom():
        return _deidentify(ds, profile, secret, pseudonyms, settings, original, declared)


def _deidentify(ds: Dataset, profile: CompiledProfile, secret: bytes, pseudonyms: PseudonymSource,
                settings: DeidSettings | None, original: Dataset | None, declared: Iterable[str]) -> EngineResult:
    settings = settings or DeidSettings()
    meta = getattr(ds, "file_meta", None)
    if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY:
        raise Quarantine("a DICOMDIR is not a composite instance; the gateway does not de-identify it")
    run = _Run(profile, secret, pseudonyms, settings, original if original is not None else ds, ds)
    if original is None:
        run.identity  # noqa: B018 - computed now, before the walk replaces the values it reads
    old_sop_instance = _text(ds, 0x00080018)
    run.walk(ds, 0)
    _file_meta(ds, run, old_sop_instance)
    options = applied_options(profile)
    write_method(ds, profile, settings.method_text, options, declared)
    return EngineResult(counts=run.counts, options=options)


def _file_meta(ds: Dataset, run: _Run, old_sop_instance: str) -> None:
    meta: FileMetaDataset | None = getattr(ds, "file_meta", None)
    if meta is None:
        return
    for tag in FILE_META_DROP:
        if tag in meta:
            del meta[tag]
            run.count("X")
    if 0x00080018 in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        run.count("U")
    elif "MediaStorageSOPInstanceUID" in meta and "retain_uids" not in run.profile.options:
        meta.MediaStorageSOPInstanceUID = remap_uid(str(meta.MediaStorageSOPInstanceUID), run.secret)
        run.count("U")
