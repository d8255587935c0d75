"""A synthetic patient's study built from pydicom's bundled test files.

Every file is rewritten into one study of two series, with one synthetic identity. The
identity's strings are what must never reach the research archive.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

IDENTITY = {
    "PatientName": "CANARY^JOHN^Q",
    "PatientID": "PID0004711",
    "PatientBirthDate": "19700101",
    "AccessionNumber": "ACC55512",
    "InstitutionName": "Saint Canary Hospital",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "OperatorsName": "NURSE^RATCHED",
    "StudyID": "STUDY8877",
}

# Renderings an identity might take on the way through; none may reach the archive.
FORBIDDEN = [
    b"CANARY", b"Canary", b"PID0004711", b"ACC55512", b"HOUSE^GREGORY", b"RATCHED",
    b"19700101", b"STUDY8877",
]

SOURCES = [
    ("CT_small.dcm", 18),  # uncompressed CT, copied into series 1
    ("MR2_J2KR.dcm", 1),  # JPEG 2000 lossless
    ("emri_small_RLE.dcm", 1),  # RLE lossless, 10 frames
    ("JPEG-LL.dcm", 1),  # JPEG lossless process 14
]


@dataclass
class Study:
    files: list[Path]
    study_uid: str
    series_uids: list[str]
    sop_uids: list[str]
    referencing_uid: str  # the instance whose ReferencedImageSequence points at another
    referenced_uid: str


def _personalize(ds: Dataset, study_uid: str, series_uid: str, number: int) -> Dataset:
    ds = copy.deepcopy(ds)
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)
    ds.PatientSex = "M"
    ds.StudyDate = "20240315"
    ds.SeriesDate = "20240315"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    ds.StudyDescription = "CHEST CANARY^JOHN"
    return ds


def make_study(folder: Path) -> Study:
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    series = [generate_uid(), generate_uid()]
    files, sops = [], []
    number = 0
    for name, copies in SOURCES:
        source = dcmread(get_testdata_file(name))
        for _ in range(copies):
            number += 1
            series_uid = series[0] if name == "CT_small.dcm" else series[1]
            ds = _personalize(source, study_uid, series_uid, number)
            files.append(folder / f"instance{number:03d}.dcm")
            sops.append(str(ds.SOPInstanceUID))
            ds.save_as(files[-1])
    # The last CT references the first one, as a localizer reference would.
    referencing = dcmread(files[17])
    item = Dataset()
    item.ReferencedSOPClassUID = referencing.SOPClassUID
    item.ReferencedSOPInstanceUID = sops[0]
    referencing.ReferencedImageSequence = Sequence([item])
    referencing.save_as(files[17])
    return Study(files, study_uid, series, sops, sops[17], sops[0])
