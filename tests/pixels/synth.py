"""Generated DICOM instances with (or without) burned-in text, for every photometric
interpretation, bit depth and transfer syntax the pixel stage must handle.

Text is drawn in the stored value domain at the value that displays white, so it is "burned
in" exactly as a modality would do it; the ground-truth boxes come back with the dataset.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PHI = ("DOE^JANE", "ID 4471203", "1961-03-14")
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Case:
    ds: Dataset
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0,y0,x1,y1 exclusive
    texts: list[str] = field(default_factory=list)


def background(rows: int, cols: int, seed: int) -> np.ndarray:
    """A smooth 'anatomy' in [0, 1]: gradient, soft blobs, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    img = 0.25 + 0.2 * (xx / cols) + 0.1 * (yy / rows)
    for _ in range(4):
        cy, cx = rng.uniform(0.2, 0.8) * rows, rng.uniform(0.2, 0.8) * cols
        r = rng.uniform(0.08, 0.2) * min(rows, cols)
        img += 0.25 * np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 0.8)


def draw_text(mask: np.ndarray, lines: list[tuple[str, int, int]], scale: float = 0.55) -> list[tuple[int, int, int, int]]:
    """Draw white text into a uint8 mask; returns each line's box."""
    boxes = []
    for text, x, y in lines:
        (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
        cv2.putText(mask, text, (x, y), FONT, scale, 255, 1, cv2.LINE_AA)
        boxes.append((x - 1, y - h - 1, x + w + 1, y + base + 1))
    return boxes


def default_lines(rows: int, cols: int) -> list[tuple[str, int, int]]:
    return [(PHI[0], 6, 18), (PHI[1], 6, 38), (PHI[2], max(6, cols - 110), rows - 8)]


def _base(rows: int, cols: int, frames: int, modality: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("gen.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI[0], "4471203", "19610314"
    ds.PatientSex = "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "20240101", "120000", "A1", "", "1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, "1", "1"
    ds.ConversionType = "WSD"
    ds.PatientOrientation = ""
    ds.Manufacturer = "ACME"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def make_mono(bits: int = 16, signed: bool = False, photometric: str = "MONOCHROME2", rows: int = 128,
              cols: int = 192, frames: int = 1, text: bool = True, seed: int = 0, modality: str = "OT",
              bits_stored: int | None = None) -> Case:
    stored = bits_stored or bits
    lo = -(1 << (stored - 1)) if signed else 0
    hi = (1 << (stored - 1)) - 1 if signed else (1 << stored) - 1
    bg = background(rows, cols, seed)
    if photometric == "MONOCHROME1":
        bg = 1.0 - bg
    ink = np.zeros((rows, cols), np.uint8)
    boxes = draw_text(ink, default_lines(rows, cols)) if text else []
    img = bg * (hi - lo) + lo
    white = lo if photometric == "MONOCHROME1" else hi
    a = ink.astype(np.float32) / 255.0
    img = img * (1 - a) + white * a
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}[(bits, signed)]
    arr = np.clip(np.rint(img), lo, hi).astype(dtype)
    arr = np.stack([arr] * frames) if frames > 1 else arr
    ds = _base(rows, cols, frames, modality)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, int(signed)
    ds.PixelData = arr.tobytes()
    return Case(ds, boxes, list(PHI) if text else [])


def make_color(photometric: str = "RGB", rows: int = 128, cols: int = 192, frames: int = 1, text: bool = True,
               seed: int = 0, modality: str = "US", lut_bits: int = 8) -> Case:
    """RGB, YBR_FULL, YBR_FULL_422 (uncompressed, subsampled) or PALETTE COLOR."""
    bg = background(rows, cols, seed)
    rgb = np.stack([bg * 200, bg * 150 + 20, bg * 120 + 40], axis=2)
    ink = np.zeros((rows, cols), np.uint8)
    boxes = draw_text(ink, default_lines(rows, cols)) if text else []
    a = (ink.astype(np.float32) / 255.0)[..., None]
    rgb = np.clip(np.rint(rgb * (1 - a) + 255 * a), 0, 255).astype(np.uint8)
    ds = _base(rows, cols, frames, modality)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if photometric == "PALETTE COLOR":
        # A grey-ish ramp palette; index 255 is white (the text).
        idx = np.clip(np.rint(bg * 250), 0, 250).astype(np.uint8)
        idx[ink > 127] = 255
        lut = np.linspace(0, 1, 256)
        top = (1 << lut_bits) - 1
        red, green, blue = (np.rint(lut * top).astype(np.uint16), np.rint(lut ** 1.2 * top).astype(np.uint16),
                            np.rint(lut ** 0.8 * top).astype(np.uint16))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "PALETTE COLOR"
        for name, data in (("Red", red), ("Green", green), ("Blue", blue)):
            setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [256, 0, lut_bits if lut_bits == 16 else 8])
            if lut_bits == 8:
                setattr(ds, f"{name}PaletteColorLookupTableData", data.astype(np.uint8).tobytes())
            else:
                setattr(ds, f"{name}PaletteColorLookupTableData", data.astype("<u2").tobytes())
        arr = np.stack([idx] * frames) if frames > 1 else idx
        ds.PixelData = arr.tobytes()
        return Case(ds, boxes, list(PHI) if text else [])
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        data = rgb
    else:
        ybr = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]  # Y, Cb, Cr (full range)
        if photometric == "YBR_FULL":
            data = ybr
        elif photometric == "YBR_FULL_422":
            assert cols % 2 == 0
            y = ybr[..., 0]
            cb = ybr[..., 1].reshape(rows, cols // 2, 2).mean(axis=2).round().astype(np.uint8)
            cr = ybr[..., 2].reshape(rows, cols // 2, 2).mean(axis=2).round().astype(np.uint8)
            packed = np.stack([y[:, 0::2], y[:, 1::2], cb, cr], axis=2)  # Y0 Y1 Cb Cr per pair
            ds.PixelData = (np.concatenate([packed] * frames) if frames > 1 else packed).tobytes()
            return Case(ds, boxes, list(PHI) if text else [])
        else:
            raise ValueError(photometric)
    arr = np.stack([data] * frames) if frames > 1 else data
    ds.PixelData = arr.tobytes()
    return Case(ds, boxes, list(PHI) if text else [])


def make_cine(frames: int = 6, changing_text_frame: int | None = 3, rows: int = 128, cols: int = 192) -> Case:
    """8-bit grey cine: moving blob, a static banner in every frame, duplicate frames, and
    (optionally) a caption that appears only from ``changing_text_frame`` on."""
    bg = background(rows, cols, 7)
    ink = np.zeros((rows, cols), np.uint8)
    boxes = draw_text(ink, [(PHI[0], 6, 18)])
    out = []
    for k in range(frames):
        f = bg.copy()
        yy, xx = np.mgrid[0:rows, 0:cols]
        cx = 60 + 10 * (k // 2)  # pairs of identical frames
        f += 0.15 * np.exp(-(((yy - 80) ** 2 + (xx - cx) ** 2) / 200.0))
        f = np.clip(f * 230, 0, 255)
        a = ink.astype(np.float32) / 255.0
        f = f * (1 - a) + 255 * a
        if changing_text_frame is not None and k >= changing_text_frame:
            late = np.zeros((rows, cols), np.uint8)
            b = draw_text(late, [(PHI[2], 70, rows - 10)])
            a2 = late.astype(np.float32) / 255.0
            f = f * (1 - a2) + 255 * a2
            if k == changing_text_frame:
                boxes += b
        out.append(np.rint(f).astype(np.uint8))
    ds = _base(rows, cols, frames, "US")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.stack(out).tobytes()
    return Case(ds, boxes, [PHI[0]] + ([PHI[2]] if changing_text_frame is not None else []))


# -- transfer syntaxes -----------------------------------------------------------------------

def roundtrip(ds: Dataset) -> Dataset:
    """Write and read back, so the dataset looks exactly like a received file."""
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


def encode(case: Case, syntax: str) -> Case:
    """Re-encode a generated case: 'explicit', 'implicit', 'big', 'rle', 'jpegls', 'j2k',
    'j2k_rct' or a dcmtk JPEG process ('jpeg_baseline', 'jpeg_extended', 'jpeg_lossless')."""
    ds = roundtrip(case.ds)
    if syntax == "explicit":
        pass
    elif syntax == "implicit":
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds = roundtrip(ds)
    elif syntax == "big":
        arr = ds.pixel_array if ds.PhotometricInterpretation != "YBR_FULL_422" else None
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        if arr is not None and ds.BitsAllocated > 8:
            ds.PixelData = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
        ds["PixelData"].VR = "OB" if ds.BitsAllocated <= 8 else "OW"
        import io

        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        buf.seek(0)
        ds = pydicom.dcmread(buf)
    elif syntax in ("rle", "jpegls", "j2k", "j2k_rct"):
        uid = {"rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless, "j2k_rct": JPEG2000Lossless}[syntax]
        from pydicom.pixels import pixel_array

        arr = pixel_array(ds, raw=True)  # stored colour space, as compress() expects
        if syntax == "j2k_rct":
            ds.compress(uid, arr, generate_instance_uid=False, use_mct=True)
            ds.PhotometricInterpretation = "YBR_RCT"
        else:
            ds.compress(uid, arr, generate_instance_uid=False)
        ds = roundtrip(ds)
    elif syntax.startswith("jpeg_"):
        flag = {"jpeg_baseline": "+eb", "jpeg_extended": "+ee", "jpeg_lossless": "+el"}[syntax]
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
            ds.save_as(src, enforce_file_format=True)
            subprocess.run(["dcmcjpeg", flag, str(src), str(dst)], check=True, capture_output=True)
            ds = pydicom.dcmread(dst)
    else:
        raise ValueError(syntax)
    return Case(ds, case.boxes, case.texts)


def have_dcmtk() -> bool:
    return shutil.which("dcmcjpeg") is not None
