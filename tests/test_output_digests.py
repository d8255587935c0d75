"""Refactoring changes no output: the same files and key give the same bytes, every one.

A fixed set of pydicom's test files and generated instances with burned-in text goes through
``deid-gateway deid`` (header stage and pixel stage, embedded defaults, a fixed key). Every
output file's path (made of de-identified UIDs) and SHA-256 must equal the digests recorded
in ``output_digests.json`` beside this file, and so must the summary the command prints. So a
UID, pseudonym, date shift, redacted pixel or transfer syntax that moves shows up here by name.

The digests were recorded from the code before the architecture change (issue 34). Record them
again only for a deliberate change of output, and say so in the commit:
``DEID_RECORD_DIGESTS=1 pytest tests/test_output_digests.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

pydicom_data = pytest.importorskip("pydicom.data")

RECORDED = Path(__file__).with_name("output_digests.json")
SECRET = "digest-test-key-0123456789abcdef"

#: pydicom's test files, chosen for breadth: modalities, transfer syntaxes (RLE, JPEG, JPEG-LS,
#: JPEG 2000, deflated, big endian), colour models, multi-frame, SR, RT and private sequences.
PYDICOM_FILES = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
    "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm", "US1_J2KR.dcm", "SC_rgb.dcm",
    "SC_rgb_rle_2frame.dcm", "emri_small.dcm", "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm",
    "reportsi.dcm", "waveform_ecg.dcm", "liver_1frame.dcm", "OT-PAL-8-face.dcm",
    "examples_ybr_color.dcm", "image_dfl.dcm", "JPEG-lossy.dcm", "ExplVR_BigEnd.dcm",
    "priv_SQ.dcm", "nested_priv_SQ.dcm", "rtdose_1frame.dcm", "SC_ybr_full_uncompressed.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm", "eCT_Supplemental.dcm",
)

#: Generated instances: (name, rows, cols, samples, frames, lines of burned-in text).
GENERATED = (
    ("ct_text", 256, 256, 1, 1, [("DOE^JANE", 12, 24), ("ID 4471203", 12, 48), ("1961-03-14", 150, 240)]),
    ("us_text", 240, 320, 3, 1, [("SMITH^JOHN  MRN 889123", 10, 20), ("L 4.5cm", 240, 228)]),
    ("cine_text", 128, 192, 1, 4, [("ROE^RICHARD", 8, 18), ("2003-07-01", 100, 118)]),
    ("no_text", 128, 128, 1, 1, []),
)


def _generated(name: str, rows: int, cols: int, samples: int, frames: int, lines, number: int) -> FileDataset:
    """A secondary-capture instance with fixed UIDs, a seeded background and Hershey text
    (drawn by OpenCV itself, so no installed font takes part)."""
    rng = np.random.default_rng(number)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    base = 60 + 50 * xx / cols + 30 * yy / rows + rng.normal(0, 2, (rows, cols))
    image = np.clip(base, 0, 255).astype(np.uint8)
    for text, x, y in lines:
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 250, 1, cv2.LINE_AA)
    pixels = np.stack([image] * frames)
    if samples == 3:
        pixels = np.stack([pixels, pixels // 2 + 40, pixels], axis=-1)

    root = "1.2.826.0.1.3680043.8.498.4711"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = f"{root}.3.{number}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(name, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"{root}.1"
    ds.SeriesInstanceUID = f"{root}.2.{number}"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JANE", "4471203", "19610314"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240105", "101500", "ACC778899"
    ds.Modality, ds.InstanceNumber = "OT", number
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.tobytes()
    return ds


def _inputs(folder: Path) -> None:
    folder.mkdir()
    for name in PYDICOM_FILES:
        shutil.copyfile(pydicom_data.get_testdata_file(name), folder / name)
    for number, spec in enumerate(GENERATED, start=1):
        _generated(*spec, number=number).save_as(folder / f"{spec[0]}.dcm", enforce_file_format=True)


def _deidentify(tmp_path: Path) -> dict:
    _inputs(tmp_path / "in")
    env = {**os.environ, "DEID_GATEWAY_SECRET": SECRET,
           "DEID_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    env.pop("DEID_GATEWAY_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "deid", "in", "out", "--device", "cpu", "--jobs", "1", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    out = tmp_path / "out"
    files = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file()}
    return {"summary": done.stdout.splitlines(), "files": files}


def test_the_same_files_and_key_give_the_same_bytes(tmp_path):
    produced = _deidentify(tmp_path)
    if os.environ.get("DEID_RECORD_DIGESTS") == "1":
        RECORDED.write_text(json.dumps(produced, indent=1, sort_keys=True) + "\n")
        pytest.skip("digests recorded")
    recorded = json.loads(RECORDED.read_text())
    assert produced["summary"] == recorded["summary"]
    missing = sorted(set(recorded["files"]) - set(produced["files"]))
    extra = sorted(set(produced["files"]) - set(recorded["files"]))
    changed = sorted(p for p in set(recorded["files"]) & set(produced["files"])
                     if recorded["files"][p] != produced["files"][p])
    assert (missing, extra, changed) == ([], [], [])
    assert len(produced["files"]) >= 20  # the set really went through
