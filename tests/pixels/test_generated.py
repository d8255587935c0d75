"""Generated images over every photometric interpretation, bit depth and transfer syntax.

With text: the stage changes the instance, the text is gone (the detector finds none, and no
available reader reads a PHI string), the output decodes and dciodvfy reports no more errors
than for the input. Without text: the very same dataset comes back, PixelData bytes and
transfer syntax untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import dciodvfy_errors, have_dciodvfy, make_stage, run, written
from stub_finder import StubFinder
from synth import PHI, encode, have_dcmtk, make_color, make_mono

from gateway.pipeline.stage import CLEAN_PIXEL_DATA, Quarantine
from gateway.pixels.decode import decode
from gateway.pixels.detect import FrameDetector
from gateway.pixels.policy import KNOWN_REGION, UNREADABLE
from models.phi import CATEGORIES as PHI_CATEGORIES

#: What the audit may say of a region: a category, never text.
CATEGORIES = {*PHI_CATEGORIES, KNOWN_REGION, UNREADABLE}

MONO_CASES = [
    # (bits, signed, photometric, bits_stored, syntax)
    (16, False, "MONOCHROME2", 12, "explicit"),
    (16, True, "MONOCHROME2", 16, "implicit"),
    (16, True, "MONOCHROME2", 12, "big"),
    (16, False, "MONOCHROME1", 16, "rle"),
    (16, True, "MONOCHROME2", 16, "jpegls"),
    (16, False, "MONOCHROME2", 16, "j2k"),
    (8, False, "MONOCHROME2", 8, "explicit"),
    (8, False, "MONOCHROME1", 8, "rle"),
    (8, False, "MONOCHROME2", 8, "jpeg_lossless"),
    (8, False, "MONOCHROME2", 8, "jpeg_baseline"),
    (16, False, "MONOCHROME2", 12, "jpeg_extended"),
]

COLOR_CASES = [
    ("RGB", "explicit"),
    ("RGB", "big"),
    ("RGB", "rle"),
    ("RGB", "jpegls"),
    ("RGB", "j2k"),
    ("RGB", "j2k_rct"),
    ("RGB", "jpeg_baseline"),
    ("YBR_FULL", "explicit"),
    ("YBR_FULL", "rle"),
    ("YBR_FULL_422", "explicit"),
    ("PALETTE COLOR", "explicit"),
    ("PALETTE COLOR", "rle"),
]


def _case(kind, params, text):
    if kind == "mono":
        bits, signed, photometric, stored, syntax = params
        case = make_mono(bits, signed, photometric, bits_stored=stored, text=text, seed=bits + stored)
    else:
        photometric, syntax = params
        case = make_color(photometric, text=text, seed=3)
    if syntax.startswith("jpeg_") and not have_dcmtk():
        pytest.skip("dcmtk not installed")
    return encode(case, syntax)


ALL = [("mono", p) for p in MONO_CASES] + [("color", p) for p in COLOR_CASES]
IDS = [f"{k}-{'-'.join(str(x) for x in p)}".replace(" ", "_") for k, p in ALL]


@pytest.mark.parametrize(("kind", "params"), ALL, ids=IDS)
def test_text_is_removed(kind, params, stage, finder, readers, tmp_path):
    case = _case(kind, params, text=True)
    received = case.ds
    before = FrameDetector(finder).detect(decode(received), received)
    assert before.boxes, "the detector must see the generated text (test precondition)"

    out, ctx = run(stage, received)
    report = ctx.reports[0]
    assert report.details["verification"].startswith("passed")
    assert CLEAN_PIXEL_DATA in ctx.declared_options
    assert report.counts["regions_redacted"] >= 1
    assert all(set(r) <= {"box", "source", "frame", "category"} for r in report.details["regions"])
    assert {r["category"] for r in report.details["regions"]} <= CATEGORIES, "a category, never text"

    back = written(out)
    assert back.BurnedInAnnotation == "NO"
    decoded = decode(back)  # the output decodes
    assert not FrameDetector(finder).detect(decoded, back).boxes
    if received.file_meta.TransferSyntaxUID.is_compressed and "LossyImageCompression" in received:
        assert back.LossyImageCompression == received.LossyImageCompression
    if back.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
        pytest.fail("a changed instance must not be written lossy")
    if kind == "color":
        assert back.PhotometricInterpretation == "RGB" and back.PlanarConfiguration == 0
    else:
        assert back.PhotometricInterpretation == received.PhotometricInterpretation
        assert back.BitsStored == received.BitsStored and back.PixelRepresentation == received.PixelRepresentation

    # Pixels far from the text keep their values (losslessly decoded inputs only).
    if not received.file_meta.TransferSyntaxUID.is_compressed or "Lossless" in received.file_meta.TransferSyntaxUID.name:
        src = decode(received).frames[0]
        dst = decoded.frames[0]
        keep = np.ones(src.shape[:2], bool)
        for x0, y0, x1, y1 in case.boxes:
            keep[max(0, y0 - 16):y1 + 16, max(0, x0 - 16):x1 + 16] = False
        if received.PhotometricInterpretation not in ("YBR_FULL", "YBR_FULL_422"):
            assert np.array_equal(src[keep], dst[keep])

    if readers:
        from gateway.pixels.render import render_frame

        seen_after = readers.read_all(render_frame(decoded.frames[0], back, "RGB" if kind == "color" else None))
        for phi in PHI:
            token = phi.replace(" ", "").upper()
            assert token not in seen_after

    if have_dciodvfy:
        assert dciodvfy_errors(back, tmp_path, "out") <= dciodvfy_errors(received, tmp_path, "in")


@pytest.mark.parametrize(("kind", "params"), ALL, ids=IDS)
def test_no_text_is_untouched(kind, params, stage, using_real_finder):
    case = _case(kind, params, text=False)
    received = case.ds
    pixel_bytes = received.PixelData
    syntax = received.file_meta.TransferSyntaxUID
    try:
        out, ctx = run(stage, received)
    except Quarantine as q:
        if using_real_finder:
            pytest.xfail(f"detector false positives led to quarantine: {q.reason}")
        raise
    if ctx.reports[0].details["regions"] and using_real_finder:
        # Safe but a detector quality defect; visible as x in the summary (the stub run keeps
        # this test strict for the stage's own pass-through logic).
        pytest.xfail(f"detector false positive on a generated image without text: {ctx.reports[0].details['regions']}")
    assert out.PixelData == pixel_bytes
    assert out.file_meta.TransferSyntaxUID == syntax
    assert "BurnedInAnnotation" not in out
    assert ctx.reports[0].details["verification"] == "passed"
    assert ctx.reports[0].details["regions"] == []
    assert CLEAN_PIXEL_DATA in ctx.declared_options


@pytest.mark.parametrize(("kind", "params"), ALL, ids=IDS)
def test_an_image_where_nothing_is_found_passes_byte_for_byte(kind, params):
    """The pass-through itself, strictly, whatever the shipped model's false positives: with a
    finder that finds nothing on these images, pixels and transfer syntax stay as received."""
    stage = make_stage(StubFinder())
    received = _case(kind, params, text=False).ds
    pixel_bytes, syntax = received.PixelData, received.file_meta.TransferSyntaxUID
    out, ctx = run(stage, received)
    assert ctx.reports[0].details["regions"] == []
    assert out.PixelData == pixel_bytes
    assert out.file_meta.TransferSyntaxUID == syntax
    assert CLEAN_PIXEL_DATA in ctx.declared_options
