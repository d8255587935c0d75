"""Canary datasets for leak testing: every identity-bearing place filled from one fake person.

A canary dataset holds a synthetic identity in every attribute Table E.1-1 names (at the top
level and again three sequences deep), in private attributes under several creators, in SR
content items, overlays, curves, an icon image and graphic annotations. After
de-identification none of the identity's renderings may occur anywhere in the written bytes,
while what the profile keeps must still be there. Used by tests/deid and bench/header.py.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from gateway.deid.table import Row, load_rows

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "DA", "DT", "TM", "AS", "CS", "UI", "UR"}
DATE_OPTIONS = ("retain_full_dates", "retain_modified_dates")


@dataclass(frozen=True)
class SyntheticIdentity:
    family: str
    given: str
    patient_id: str  # with leading zeros
    accession: str
    other_id: str
    birth_date: str  # YYYYMMDD
    event_date: str  # YYYYMMDD (study, series, acquisition ...)
    event_time: str  # HHMMSS
    phone: str
    street: str
    device: str
    institution: str
    uid_root: str

    @classmethod
    def random(cls, seed: int = 0) -> SyntheticIdentity:
        rng = random.Random(seed)

        def word(n: int) -> str:
            return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))

        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(60 * 365))
        event = date(2005, 1, 1) + timedelta(days=rng.randrange(15 * 365))
        return cls(
            family=word(9),
            given=word(7),
            patient_id="00" + str(rng.randrange(10**7, 10**8)),
            accession="A" + str(rng.randrange(10**8, 10**9)),
            other_id="M" + str(rng.randrange(10**8, 10**9)),
            birth_date=birth.strftime("%Y%m%d"),
            event_date=event.strftime("%Y%m%d"),
            event_time=f"{rng.randrange(8, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            phone=f"555-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}",
            street=word(8) + " STREET",
            device="SN" + word(6),
            institution="INST" + word(8),
            uid_root=f"1.2.826.0.1.3680043.10.{rng.randrange(100, 999)}.{rng.randrange(10**6, 10**7)}",
        )

    # -- renderings --------------------------------------------------------------------------
    @staticmethod
    def date_forms(da: str) -> list[str]:
        y, m, d = da[:4], da[4:6], da[6:]
        return [da, f"{y}-{m}-{d}", f"{m}/{d}/{y}", f"{d}/{m}/{y}", f"{d}.{m}.{y}"]

    def person_forms(self) -> list[str]:
        f, g = self.family, self.given
        return [f"{f}^{g}", f"{g.title()} {f.title()}", f"{f} {g}", f"{g} {f}", f, g, f.title(), g.title()]

    def id_forms(self) -> list[str]:
        return [self.patient_id, self.patient_id.lstrip("0"), self.accession, self.other_id, self.phone, self.street]

    def forbidden(self, options: frozenset[str] | set[str]) -> list[str]:
        """Strings that must not occur in the output of a profile with ``options``."""
        out = self.person_forms() + self.id_forms() + self.date_forms(self.birth_date)
        if "retain_full_dates" not in options or "retain_modified_dates" in options:
            out += self.date_forms(self.event_date)
        if not any(o in options for o in DATE_OPTIONS):
            out.append(self.event_time)
        if "retain_device_identity" not in options:
            out.append(self.device)
        if "retain_institution_identity" not in options:
            out.append(self.institution)
        if "retain_uids" not in options:
            out.append(self.uid_root)
        return out

    # -- values ------------------------------------------------------------------------------
    def text(self, vr: str, tag: int, row: Row | None = None) -> object:
        """An identity-bearing value for ``vr``, of the category the row's options imply."""
        options = row.options if row else {}
        keyword = row.keyword if row else None
        if keyword == "PatientAddress":
            return self.street
        if keyword == "PatientTelephoneNumbers":
            return self.phone
        if any(o in options for o in DATE_OPTIONS) and vr not in ("DA", "DT", "TM"):
            return "-0500" if vr == "SH" else self.event_date
        if "retain_device_identity" in options and vr not in ("DA", "DT", "TM", "SQ"):
            return self.device
        if "retain_institution_identity" in options:
            return self.institution
        if options.get("retain_patient_characteristics") == "K":
            return {"CS": "NO", "SH": "CAUCASIAN", "LO": "NONE", "AS": "053Y"}.get(vr, "NONE")
        if ("clean_descriptors" in options or "retain_patient_characteristics" in options) and vr in (
            "LO", "LT", "ST", "UT", "UC", "SH"
        ):
            text = f"CT CHEST {self.family} {self.patient_id}"
            return text[:16] if vr == "SH" else text
        birth = self.birth_date
        f, g, pid = self.family, self.given, self.patient_id
        if vr == "PN":
            return f"{f}^{g}"
        if vr == "LO":
            return f"{g} {f} {pid} {birth[:4]}-{birth[4:6]}-{birth[6:]}"
        if vr == "SH":
            return [pid, f, self.accession, birth, pid.lstrip("0")][tag % 5]
        if vr in ("LT", "ST", "UT", "UC"):
            born = " ".join(self.date_forms(birth))
            seen = " ".join(self.date_forms(self.event_date))
            return (f"Patient {f}^{g}, {g.title()} {f.title()}, {f} {g}. ID {pid} ({pid.lstrip('0')}), "
                    f"MRN {self.other_id}, acc {self.accession}, born {born}, seen {seen}, "
                    f"tel {self.phone}, {self.street}")
        if vr == "AE":
            return f
        if vr == "DA":
            return self.event_date if row is None or any(o in options for o in DATE_OPTIONS) else birth
        if vr == "DT":
            return self.event_date + self.event_time
        if vr == "TM":
            return self.event_time
        if vr == "AS":
            return "053Y"
        if vr == "CS":
            return f
        if vr == "UI":
            return f"{self.uid_root}.{tag & 0xFFFF}"
        if vr == "UR":
            return f"https://{f.lower()}.example/{pid}"
        raise ValueError(vr)

    def person_item(self) -> Dataset:
        item = Dataset()
        item.PatientName = f"{self.family}^{self.given}"
        item.PatientID = self.patient_id
        item.OtherPatientIDs = self.other_id
        item.PatientBirthDate = self.birth_date
        item.PatientAddress = self.street
        item.PatientTelephoneNumbers = self.phone
        item.AccessionNumber = self.accession
        item.InstitutionName = self.institution
        item.StudyComments = self.text("LT", 0)
        return item


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def base_dataset(identity: SyntheticIdentity) -> Dataset:
    """A minimal CT image with file meta, before any canary is added."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = identity.uid_root + ".9.1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1.1"
    ds.file_meta.SourceApplicationEntityTitle = identity.family
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = identity.uid_root + ".9.1"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME MEDICAL"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))
    return ds


def _fill_rows(ds: Dataset, identity: SyntheticIdentity) -> None:
    for row in load_rows():
        if not row.is_exact or row.vr is None or (row.tag_int >> 16) in (0x0000, 0x0002):
            continue
        tag, vr = row.tag_int, row.vr.split(" or ")[0]
        if tag in (0x00080016, 0x00080018, 0x7FE00010):
            continue
        if vr in TEXT_VRS:
            ds.add_new(tag, vr, identity.text(vr, tag, row))
        elif vr == "SQ":
            ds.add_new(tag, vr, Sequence([_sequence_item(identity, row)]))
        elif vr in ("OB", "UN", "OW"):
            value = identity.text("LO", tag, row)
            if value == identity.text("LO", tag, None):
                value = identity.family + identity.given
            ds.add_new(tag, vr, str(value).encode("ascii").ljust(16, b" ")[:16])
        elif vr in ("DS", "IS"):
            ds.add_new(tag, vr, "77" if vr == "IS" else "1.83")
        elif vr in ("US", "SS", "UL", "SL"):
            ds.add_new(tag, vr, 1)


def _sequence_item(identity: SyntheticIdentity, row: Row) -> Dataset:
    if "retain_institution_identity" in row.options:
        return _code("INST01", "99CANARY", identity.institution)
    if "retain_device_identity" in row.options:
        return _code("DEV01", "99CANARY", identity.device)
    if "Referenced" in row.name or "Source Image" in row.name:
        item = Dataset()
        item.ReferencedSOPClassUID = CT_IMAGE
        item.ReferencedSOPInstanceUID = identity.uid_root + ".7.7"
        return item
    return identity.person_item()


def _add_nested(ds: Dataset, identity: SyntheticIdentity) -> None:
    """Identity three sequences deep, inside sequences the table does not name."""
    level3 = identity.person_item()
    level3.CodeValue, level3.CodingSchemeDesignator, level3.CodeMeaning = "121311", "DCM", "Localizer"
    level2 = Dataset()
    level2.ReferencedSOPClassUID = CT_IMAGE
    level2.ReferencedSOPInstanceUID = identity.uid_root + ".2.2"
    level2.PurposeOfReferenceCodeSequence = Sequence([level3])
    level1 = Dataset()
    level1.SeriesInstanceUID = identity.uid_root + ".1.1"
    level1.ReferencedInstanceSequence = Sequence([level2])
    ds.ReferencedSeriesSequence = Sequence([level1])


def _add_private(ds: Dataset, identity: SyntheticIdentity) -> None:
    """Private attributes under several creators, one of them with known-safe elements."""
    a = ds.private_block(0x0009, "CANARY PRIVATE A", create=True)
    a.add_new(0x10, "PN", f"{identity.family}^{identity.given}")
    a.add_new(0x11, "LO", identity.patient_id)
    a.add_new(0x12, "DA", identity.birth_date)
    inner = Dataset()
    inner.add_new(0x00091010, "LO", identity.text("LO", 0))
    deeper = Dataset()
    deeper.PatientName = f"{identity.family}^{identity.given}"
    inner.ReferencedSeriesSequence = Sequence([deeper])
    a.add_new(0x13, "SQ", Sequence([inner]))
    b = ds.private_block(0x0011, "ACME CORP 1.0", create=True)
    b.add_new(0x01, "UT", identity.text("UT", 0))
    b.add_new(0x02, "OB", (identity.given + identity.patient_id).encode("ascii"))
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")  # B_value: safe
    siemens.add_new(0x0E, "FD", [0.0, 0.70710678, 0.70710678])  # gradient direction: safe
    siemens.add_new(0x10, "LO", identity.text("LO", 1))  # not on the safe list
    ge = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    ge.add_new(0x39, "IS", ["1000", "0", "0", "0"])  # b-value: safe
    ge.add_new(0x40, "SH", identity.patient_id)


def _add_sr(ds: Dataset, identity: SyntheticIdentity) -> None:
    def item(value_type: str, code: tuple[str, str, str], **values) -> Dataset:
        it = Dataset()
        it.RelationshipType = "CONTAINS"
        it.ValueType = value_type
        it.ConceptNameCodeSequence = Sequence([_code(*code)])
        for k, v in values.items():
            setattr(it, k, v)
        return it

    num = item("NUM", ("121206", "DCM", "Distance"))
    measured = Dataset()
    measured.NumericValue = "42.5"
    measured.MeasurementUnitsCodeSequence = Sequence([_code("mm", "UCUM", "millimeter")])
    num.MeasuredValueSequence = Sequence([measured])
    text = item("TEXT", ("121071", "DCM", "Finding"),
                TextValue=f"Nodule in right lung for {identity.family} {identity.given} ID {identity.patient_id}")
    container = item("CONTAINER", ("111028", "DCM", "Image Library"), ContinuityOfContent="SEPARATE")
    container.ContentSequence = Sequence([
        item("PNAME", ("121008", "DCM", "Person Observer Name"), PersonName=f"{identity.family}^{identity.given}"),
        item("DATE", ("111060", "DCM", "Study Date"), Date=identity.event_date),
        item("UIDREF", ("121018", "DCM", "Procedure Study Instance UID"), UID=identity.uid_root + ".3.3"),
        item("CODE", ("121071", "DCM", "Finding"), ConceptCodeSequence=Sequence([_code("39607008", "SCT", "Lung")])),
        num,
        text,
    ])
    ds.ContentSequence = Sequence([container])


def _add_graphics(ds: Dataset, identity: SyntheticIdentity) -> None:
    label = (identity.family + identity.given).encode("ascii")[:16].ljust(16, b" ")
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 16)
    ds.add_new(0x60000022, "LO", identity.text("LO", 2))
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", label)
    ds.add_new(0x60004000, "LT", identity.text("LT", 3))
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x50000010, "US", 8)
    ds.add_new(0x50002500, "LO", identity.text("LO", 4))
    ds.add_new(0x50003000, "OB", label)
    icon = Dataset()
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.Rows, icon.Columns, icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 4, 4, 8, 8, 7, 0
    icon.PixelData = label
    ds.IconImageSequence = Sequence([icon])
    text_object = Dataset()
    text_object.UnformattedTextValue = f"Arrow {identity.family} {identity.patient_id}"
    text_object.BoundingBoxAnnotationUnits = "PIXEL"
    text_object.BoundingBoxTopLeftHandCorner = [1.0, 1.0]
    text_object.BoundingBoxBottomRightHandCorner = [3.0, 3.0]
    annotation = Dataset()
    annotation.GraphicLayer = "LAYER1"
    annotation.TextObjectSequence = Sequence([text_object])
    ds.GraphicAnnotationSequence = Sequence([annotation])


def canary_dataset(identity: SyntheticIdentity | None = None) -> Dataset:
    """A dataset with the identity in every place named in the module docstring."""
    identity = identity or SyntheticIdentity.random()
    ds = base_dataset(identity)
    _fill_rows(ds, identity)
    # Patient characteristics with plain values, so keeping them is checkable.
    ds.PatientSex, ds.PatientAge, ds.PatientWeight, ds.PatientSize = "F", "053Y", "77", "1.83"
    ds.StudyDescription = f"CT CHEST {identity.family} {identity.patient_id} {identity.date_forms(identity.birth_date)[2]}"
    _add_nested(ds, identity)
    _add_private(ds, identity)
    _add_sr(ds, identity)
    _add_graphics(ds, identity)
    return ds


def inject(ds: Dataset, identity: SyntheticIdentity) -> Dataset:
    """Put the identity into an existing dataset: every table attribute it has, at any depth,
    plus the patient module, private attributes and a nested sequence."""
    rows = {row.tag_int: row for row in load_rows() if row.is_exact and row.vr}

    def fill(d: Dataset) -> None:
        for tag in list(d.keys()):
            row = rows.get(tag)
            elem = d[tag]
            if elem.VR == "SQ":
                for item in elem.value or []:
                    fill(item)
            elif row is not None and elem.VR in TEXT_VRS and tag not in (0x00080016, 0x00080018, 0x00020003):
                if elem.VR == "UI":
                    continue  # keep references consistent; UIDs are remapped wholesale anyway
                d[tag].value = identity.text(elem.VR, tag, row)

    fill(ds)
    ds.PatientName = f"{identity.family}^{identity.given}"
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.birth_date
    ds.OtherPatientIDs = identity.other_id
    ds.AccessionNumber = identity.accession
    ds.InstitutionName = identity.institution
    ds.DeviceSerialNumber = identity.device
    _add_nested(ds, identity)
    _add_private(ds, identity)
    return ds
