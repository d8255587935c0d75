"""What is drawn, not written, is set aside: dotted grids, traces, calipers and rulers keep their pixels
while the PHI line beside them is still redacted (`models.looks.drawn`, looks-10; crosses whose ground
outshines them, body markers, block rulers and thicker traces since looks-11)."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from models.inference import DEFAULT_WEIGHTS
from models.looks.drawn import drawn_shape, set_aside

GREY, INK = 40, 230
#: Where each graphic of ``scanner_image`` lies, and the PHI line.
GRID = (38, 148, 152, 214)
CALIPERS = (193, 113, 268, 178)
TRACE = (18, 226, 302, 244)
PHI_LINE = (6, 6, 160, 24)


def _grid(img: np.ndarray) -> None:
    """A dotted grid, one dot in three, rows and columns 16 px apart."""
    for y in range(150, 215, 16):
        img[y, 40:150:3] = INK
    for x in range(40, 150, 16):
        img[150:212:3, x] = INK


def _caliper(img: np.ndarray, cx: int, cy: int, r: int = 5) -> None:
    cv2.line(img, (cx - r, cy), (cx + r, cy), INK, 1)
    cv2.line(img, (cx, cy - r), (cx, cy + r), INK, 1)


def _trace(img: np.ndarray) -> None:
    """An ECG trace: a flat line with a spike every 50 px."""
    xs = np.arange(20, 300)
    ys = 240 - 10 * np.exp(-((((xs % 50) - 25) / 2.0) ** 2))
    cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, INK - 10, 1, cv2.LINE_AA)


def scanner_image() -> np.ndarray:
    """A 256 x 320 frame: a soft disc of 'anatomy' in noise, a PHI line at the top, and beside it
    the graphics a scanner draws: a dotted grid, a pair of calipers and an ECG trace."""
    rng = np.random.default_rng(7)
    img = np.full((256, 320), GREY, np.uint8)
    cv2.circle(img, (160, 150), 90, 110, -1)
    img = cv2.GaussianBlur(img, (0, 0), 6)
    img = np.clip(img.astype(int) + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
    cv2.putText(img, "DOE^JANE 4471203", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, INK + 5, 1, cv2.LINE_AA)
    _grid(img)
    _caliper(img, 200, 120)
    _caliper(img, 260, 170)
    _trace(img)
    return img


def _crop(img: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]


# ------------------------------------------------------------------ shapes (no network)
def test_a_dotted_grid_is_a_lattice():
    img = np.full((40, 120), GREY, np.uint8)
    img[10, 4:116:3] = INK
    img[30, 4:116:3] = INK
    assert drawn_shape(img) == "lattice"


def test_a_respiratory_trace_is_a_trace():
    img = np.full((40, 300), GREY, np.uint8)
    xs = np.arange(4, 296)
    cv2.polylines(img, [np.stack([xs, 20 + 12 * np.sin(xs / 20)], 1).astype(np.int32)], False, INK, 1, cv2.LINE_AA)
    assert drawn_shape(img) == "trace"


def test_a_calipers_cross_is_a_figure():
    img = np.full((18, 32), GREY, np.uint8)
    _caliper(img, 16, 9)
    assert drawn_shape(img) == "figure"


def test_a_rulers_ticks_are_a_ruler():
    img = np.full((20, 200), GREY, np.uint8)
    for k, x in enumerate(range(6, 196, 8)):
        cv2.line(img, (x, 16), (x, 16 - (9 if k % 5 == 0 else 4)), INK, 1)
    assert drawn_shape(img) == "ruler"


def test_a_thin_x_whose_ground_the_black_hat_lifts_as_high_is_still_a_figure():
    """A caliper's "x" of 1 px arms in noise: the black-hat lifts the ground between the arms as high
    as the top-hat lifts the arms, and wins by the noise; the stronger polarity is then a block the
    cross cuts into pieces (looks-10 saw no figure there, 4 such crosses on the held-out seed)."""
    rng = np.random.default_rng(1)
    img = np.full((34, 18), 150, np.uint8)
    cv2.line(img, (4, 11), (14, 21), 230, 1)
    cv2.line(img, (4, 21), (14, 11), 230, 1)
    img = np.clip(img.astype(int) + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
    assert drawn_shape(img) == "figure"


def test_a_body_marker_with_its_probe_bar_inside_is_a_marker():
    """The outline and the probe's thick bar are two components, the bar too solid for a figure."""
    img = np.full((38, 76), GREY, np.uint8)
    cv2.rectangle(img, (24, 5), (52, 33), INK, 1)
    cv2.line(img, (38, 11), (38, 27), INK, 3)
    assert drawn_shape(img) == "marker"


def test_a_letter_in_a_box_is_not_a_marker():
    """A boxed letter is an outline with something inside too, but the letter is not a bar."""
    img = np.full((38, 76), GREY, np.uint8)
    cv2.rectangle(img, (24, 5), (52, 33), INK, 1)
    cv2.putText(img, "F", (31, 27), cv2.FONT_HERSHEY_SIMPLEX, 0.6, INK, 2)
    assert drawn_shape(img) != "marker"


def test_a_rulers_ticks_thickened_into_blocks_are_a_ruler():
    """A depth ruler whose ticks the display (or the top-hat) widened to 4 px: read "1111111111"."""
    img = np.full((200, 22), GREY, np.uint8)
    for y in range(8, 192, 10):
        img[y:y + 9, 8:12] = INK
    assert drawn_shape(img) == "ruler"


def test_a_thicker_trace_is_a_trace():
    """A 2 px respiratory trace fills more than a quarter of its box, but crosses each column once."""
    img = np.full((24, 300), GREY, np.uint8)
    xs = np.arange(4, 296)
    cv2.polylines(img, [np.stack([xs, 12 + 5 * np.sin(xs / 9)], 1).astype(np.int32)], False, INK, 2, cv2.LINE_AA)
    assert drawn_shape(img) == "trace"


def test_a_straight_bar_over_a_line_of_text_is_not_a_trace():
    """A banner's edge crosses every column once too, but it does not rise and fall."""
    img = np.full((28, 160), GREY, np.uint8)
    img[0:4, 16:146] = INK
    cv2.putText(img, "CN: A 2", (20, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 90, 1)
    assert drawn_shape(img) is None


@pytest.mark.parametrize("text", ["DOE^JANE", "4471203", "1961-03-14", "Smith, John 37Y"])
@pytest.mark.parametrize("scale,thickness", [(0.4, 1), (0.5, 1), (0.7, 2), (1.0, 1)])
def test_a_line_of_text_is_not_drawn(text, scale, thickness):
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    for ground, ink in ((30, 220), (200, 40)):
        img = np.full((h + base + 8, w + 8), ground, np.uint8)
        cv2.putText(img, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)
        assert drawn_shape(img) is None


# ------------------------------------------------------------------ the decision on a drawn region
def test_a_drawn_region_the_recogniser_reads_as_a_line_stays():
    assert not set_aside("trace", 0.1, "DOE JANE", 0.8)
    assert not set_aside("lattice", 0.1, "4471203", 0.6)


def test_a_lattice_read_as_nothing_goes_unless_the_verifier_believes_it():
    """Dot-matrix fonts break into aligned dots too ("SCOUT" read "SCLNIT" at 0.40, verifier 0.999)."""
    assert set_aside("lattice", 0.3, "Saeeeee", 0.2)
    assert not set_aside("lattice", 0.99, "SCLNIT", 0.39)


def test_a_figure_read_as_a_letter_the_verifier_believes_stays():
    """A sex marker ("[M]", "F") is one component too."""
    assert not set_aside("figure", 0.99, "M", 0.9)
    assert set_aside("figure", 0.2, "x", 0.6)
    assert set_aside("figure", 0.95, "+", 0.95)  # no letter or digit at all


def test_a_marker_is_judged_as_a_figure():
    """A body marker read as two letters stays (a figure reads as at most one), and one read as no
    letter or digit at all ("<©") goes however much the verifier believes it."""
    assert not set_aside("marker", 0.1, "AB", 0.3)
    assert set_aside("marker", 0.98, "<©", 0.42)
    assert set_aside("marker", 0.1, "0", 0.46)


def test_a_ruler_read_as_one_digit_repeated_goes():
    assert set_aside("ruler", 0.0, "1111111111", 0.46)
    assert not set_aside("ruler", 0.0, "4471203", 0.46)


# ------------------------------------------------------------------ the default pixel stage
def _dataset(pixels: np.ndarray) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("drawn.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "DOE^JANE", "4471203", "US"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return ds


@pytest.mark.skipif(not (Path(DEFAULT_WEIGHTS) / "detector.pt").exists(), reason="no shipped weights")
def test_the_default_stage_keeps_the_grid_calipers_and_trace_and_redacts_the_phi_line():
    """With looks-9 the grid (two dotted rows merged into a region taller than a line) and the
    trace's spikes were restored too."""
    from gateway.pipeline.stage import InstanceContext
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.decode import decode
    from gateway.pixels.stage import PixelStage

    image = scanner_image()
    ds = _dataset(image)
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "device": "cpu"}), "cpu")
    out = decode(stage(copy.deepcopy(ds), InstanceContext(original=ds))).frames[0]
    for graphic in (GRID, CALIPERS, TRACE):
        assert np.array_equal(_crop(out, graphic), _crop(image, graphic)), graphic
    changed = _crop(out, PHI_LINE) != _crop(image, PHI_LINE)
    assert changed.mean() > 0.3
