"""Small synthetic studies for the rules and pull tests: a few CT_small copies per study, each
study with its own patient, accession number and UIDs (and optionally a screenshot)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid


@dataclass
class SmallStudy:
    files: list[Path]
    study_uid: str
    accession: str
    patient_id: str


def make_small_study(folder: Path, accession: str, patient_id: str, instances: int = 2,
                     screenshot: bool = False, study_date: str = "20240315") -> SmallStudy:
    """``instances`` CT images in one series (plus a Secondary Capture in a second series)."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    files = []
    for number in range(instances + (1 if screenshot else 0)):
        ds = dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientID, ds.PatientName = patient_id, f"PATIENT^{patient_id}"
        ds.AccessionNumber, ds.StudyDate = accession, study_date
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number + 1
        if number == instances:  # the screenshot
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
            ds.SeriesInstanceUID, ds.Modality = generate_uid(), "OT"
        path = folder / f"{accession}-{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return SmallStudy(files, study_uid, accession, patient_id)
