"""Generated chest radiographs as DICOM: no patient's anatomy, only its shape.

A bright body with two darker lung fields, a mediastinum, a spine and ribs, some noise; stored
as a DX (or CR) instance of 12 bits in 16, MONOCHROME2 or MONOCHROME1, with a VOI window.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"


def chest(rows: int = 512, cols: int = 512, seed: int = 0) -> np.ndarray:
    """A chest-like image in [0, 1] (bright bone and soft tissue, dark lungs)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, cols), np.float32)
    cv2.ellipse(img, (cols // 2, rows // 2), (int(cols * 0.45), int(rows * 0.48)), 0, 0, 360, 0.7, -1)
    for side in (-1, 1):
        centre = (cols // 2 + side * int(cols * rng.uniform(0.17, 0.2)), int(rows * rng.uniform(0.45, 0.5)))
        cv2.ellipse(img, centre, (int(cols * 0.13), int(rows * 0.3)), side * 5, 0, 360, 0.25, -1)
    cv2.rectangle(img, (cols // 2 - cols // 30, 0), (cols // 2 + cols // 30, rows), 0.85, -1)
    for k in range(9):
        y = int(rows * (0.2 + 0.07 * k))
        cv2.ellipse(img, (cols // 2, y), (int(cols * 0.33), int(rows * 0.05)), 0, 180, 360, 0.6, max(1, rows // 170))
    img = cv2.GaussianBlur(img, (0, 0), max(1.0, rows / 256))
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def make_chest(rows: int = 512, cols: int = 512, seed: int = 0, modality: str = "DX",
               photometric: str = "MONOCHROME2", body_part: str | None = "CHEST", view: str | None = "PA",
               frames: int = 1) -> FileDataset:
    image = chest(rows, cols, seed)
    if photometric == "MONOCHROME1":
        image = 1 - image
    stored = np.rint(image * 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_PRESENTATION if modality == "DX" else CR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("chest.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "DOE^JANE", "4471203", "19610314", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = (
        "20240101", "120000", "A1", "", "1")
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, "1", "1"
    if body_part is not None:
        ds.BodyPartExamined = body_part
    if view is not None:
        ds.ViewPosition = view
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    ds.BurnedInAnnotation = "NO"
    if frames > 1:
        ds.NumberOfFrames = frames
        stored = np.stack([stored] * frames)
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    return ds
