"""Stage behaviour: pass-through, quarantine, policy, known regions, verification fallbacks,
output encodings, header consistency and the report's content."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
from conftest import dciodvfy_errors, have_dciodvfy, make_stage, run, written
from pydicom import Dataset
from pydicom.sequence import Sequence
from stub_finder import StubFinder
from synth import PHI, encode, make_color, make_mono

from gateway.pipeline.stage import CLEAN_PIXEL_DATA, InstanceContext, Quarantine
from gateway.pixels.config import PixelsConfig
from gateway.pixels.decode import decode
from gateway.pixels.detect import FrameDetector
from gateway.pixels.inpaint.base import paste
from gateway.pixels.stage import PixelStage
from models.regions import TextRegion


def test_instance_without_pixel_data_passes_untouched(stage):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.PatientName = "DOE^JANE"
    ctx = InstanceContext(original=ds)
    assert stage(ds, ctx) is ds
    assert ctx.reports == [] and not ctx.declared_options


def test_unchanged_instance_is_the_same_object(stage):
    case = encode(make_mono(text=False), "rle")
    ctx = InstanceContext(original=case.ds)
    assert stage(case.ds, ctx) is case.ds
    assert CLEAN_PIXEL_DATA in ctx.declared_options


def test_truncated_pixel_data_is_quarantined(stage):
    ds = encode(make_mono(text=False), "explicit").ds
    ds.PixelData = ds.PixelData[:100]
    with pytest.raises(Quarantine, match="cannot be decoded"):
        run(stage, ds)


def test_corrupt_compressed_data_is_quarantined(stage):
    from pydicom.encaps import encapsulate

    ds = encode(make_mono(bits=8, text=False), "jpegls").ds
    ds.PixelData = encapsulate([b"\xff\xd8 not a codestream \xff\xd9"])
    with pytest.raises(Quarantine, match="JPEG-LS"):
        run(stage, ds)


def test_unsupported_photometric_is_quarantined(stage):
    ds = encode(make_mono(bits=8, text=False), "explicit").ds
    ds.PhotometricInterpretation = "HSV"
    with pytest.raises(Quarantine, match="photometric"):
        run(stage, ds)


def test_missing_detector_quarantines_rather_than_passes(tmp_path):
    cfg = PixelsConfig.model_validate({"enabled": True, "weights_dir": str(tmp_path)})
    stage = PixelStage(cfg, "cpu")
    ds = encode(make_mono(text=True), "explicit").ds
    with pytest.raises(Quarantine, match="detector unavailable"):
        run(stage, ds)


def test_report_has_coordinates_not_text(stage):
    case = encode(make_mono(text=True), "explicit")
    _, ctx = run(stage, case.ds)
    report = ctx.reports[0]
    blob = json.dumps({"counts": report.counts, "details": report.details}, default=str).upper()
    for phi in PHI + ("4471203", "JANE"):
        assert phi.upper() not in blob
    assert report.details["backend"] == "telea"
    assert report.details["detector_version"]
    assert report.counts["regions_redacted"] == len(report.details["regions"])


def test_header_consistency(stage):
    case = encode(make_color("RGB", text=True), "explicit")
    ds = case.ds
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    ds.IconImageSequence = Sequence([icon])
    ds.BurnedInAnnotation = "YES"
    out, ctx = run(stage, ds)
    assert "IconImageSequence" not in out
    assert out.BurnedInAnnotation == "NO"
    assert CLEAN_PIXEL_DATA in ctx.declared_options


def test_lossy_history_is_kept(stage):
    case = encode(make_color("RGB", text=True), "jpeg_baseline")
    received = case.ds
    received.LossyImageCompressionRatio = "12.5"
    out, _ = run(stage, received)
    back = written(out)
    assert back.LossyImageCompression == "01"
    assert back.LossyImageCompressionMethod == "ISO_10918_1"
    assert back.LossyImageCompressionRatio == "12.5"
    assert not back.file_meta.TransferSyntaxUID.is_compressed


@pytest.mark.parametrize("syntax", ["rle", "jpegls", "j2k"])
@pytest.mark.parametrize("kind", ["mono16", "rgb", "palette"])
def test_lossless_output_syntaxes(syntax, kind, finder, tmp_path):
    case = {
        "mono16": lambda: make_mono(16, True, bits_stored=12),
        "rgb": lambda: make_color("YBR_FULL"),
        "palette": lambda: make_color("PALETTE COLOR", lut_bits=16),
    }[kind]()
    received = encode(case, "explicit").ds
    out, ctx = run(make_stage(finder, output_syntax=syntax), received)
    back = written(out)
    assert back.file_meta.TransferSyntaxUID.is_compressed
    assert ctx.reports[0].details["transfer_syntax"] == back.file_meta.TransferSyntaxUID
    frames = decode(back).frames
    # Lossless: what the stage produced is exactly what decodes.
    via_plain = decode(written(run(make_stage(finder), received)[0])).frames
    assert np.array_equal(frames, via_plain)
    assert not FrameDetector(finder).detect(decode(back), back).boxes
    if have_dciodvfy:
        assert dciodvfy_errors(back, tmp_path, "out") <= dciodvfy_errors(received, tmp_path, "in")


def test_big_endian_changed_instance_is_written_little_endian(stage):
    case = encode(make_mono(16, True, bits_stored=12, text=True), "big")
    received = case.ds
    out, _ = run(stage, received)
    back = written(out)
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    src, dst = decode(received).frames[0], decode(back).frames[0]
    assert np.array_equal(src[60:100, :60], dst[60:100, :60])


def test_keep_safe_policy_keeps_safe_text_only():
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds
    truth = list(zip(case.boxes, ["DOE^JANE", "ID 4471203", "LIVER"], strict=True))
    finder = StubFinder(truth)
    cfg = PixelsConfig.model_validate({"enabled": True, "policy": "keep_safe"})
    stage = PixelStage(cfg, "cpu", finder=finder,
                       classify=lambda text, ids: "safe" if text == "LIVER" else "name",
                       identifiers_from=lambda ds: None)
    out, ctx = run(stage, received)
    report = ctx.reports[0]
    assert report.counts["regions_kept"] == 1
    assert report.counts["regions_redacted"] == 2
    src, dst = decode(received).frames[0], decode(out).frames[0]
    x0, y0, x1, y1 = case.boxes[2]
    assert np.array_equal(src[y0:y1, x0:x1], dst[y0:y1, x0:x1]), "safe text kept as is"
    remaining = FrameDetector(finder).detect(decode(out), out).boxes
    assert len(remaining) == 1 and remaining[0].intersects(
        type(remaining[0])(x0, y0, x1, y1)), "only the safe line remains"


def test_keep_safe_redacts_safe_text_read_without_confidence():
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds

    class Unsure(StubFinder):
        def readings(self, image, regions):
            return [(text, 0.5) for text, _ in super().readings(image, regions)]

    truth = list(zip(case.boxes, ["DOE^JANE", "ID 4471203", "LIVER"], strict=True))
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "policy": "keep_safe"}), "cpu",
                       finder=Unsure(truth), classify=lambda text, ids: "safe" if text == "LIVER" else "name",
                       identifiers_from=lambda ds: None)
    _, ctx = run(stage, received)
    assert ctx.reports[0].counts["regions_kept"] == 0
    assert ctx.reports[0].counts["regions_redacted"] == 3


def test_unreadable_text_is_redacted_under_keep_safe():
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "policy": "keep_safe"}), "cpu",
                       finder=StubFinder(), classify=lambda t, i: "safe", identifiers_from=lambda ds: None)
    _, ctx = run(stage, received)
    assert ctx.reports[0].counts["regions_kept"] == 0


def test_known_regions_are_united_with_detections(finder):
    received = encode(make_mono(bits=8, text=False, rows=128, cols=192), "explicit").ds
    received.Manufacturer, received.ManufacturerModelName = "ACME Medical", "Sono 5000"
    rule = {"manufacturer": "acme", "model": "sono", "rows": 128, "columns": 192,
            "regions": [{"x0": 0, "y0": 0, "x1": 192, "y1": 10}]}
    stage = make_stage(finder, known_regions=[rule])
    out, ctx = run(stage, received)
    regions = ctx.reports[0].details["regions"]
    assert {"box": [0, 0, 192, 10], "source": "known"} in regions
    assert out.BurnedInAnnotation == "NO"
    # A different model does not match.
    received.ManufacturerModelName = "Other"
    _, ctx2 = run(stage, received)
    assert ctx2.reports[0].details["regions"] == []


class _LazyBackend:
    """A broken backend that leaves the text where it was."""

    name = "lazy"
    version = "lazy-0"

    def restore(self, frame, mask, ctx):
        return frame.copy()


def test_failed_restoration_falls_back_to_fill(finder):
    received = encode(make_mono(text=True), "explicit").ds
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True}), "cpu",
                       finder=finder, backend=_LazyBackend())
    out, ctx = run(stage, received)
    details = ctx.reports[0].details
    assert details["verification"] == "passed after fill fallback"
    assert details["fallback_regions"]
    assert ctx.reports[0].counts["regions_fallback_fill"] >= 1
    assert not FrameDetector(finder).detect(decode(out), out).boxes
    assert CLEAN_PIXEL_DATA in ctx.declared_options


class _AlwaysText:
    """A finder that sees text everywhere, always: nothing can be verified."""

    version = "paranoid"

    def detect(self, image):
        h, w = image.shape[:2]
        return [TextRegion(0, 0, w, h, 1.0)]

    def detect_batch(self, images):
        return [self.detect(i) for i in images]

    def readings(self, image, regions):
        return [("", 0.0)] * len(regions)


def test_unverifiable_instance_is_quarantined():
    received = encode(make_mono(text=True), "explicit").ds
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True}), "cpu", finder=_AlwaysText())
    ctx = InstanceContext(original=received)
    with pytest.raises(Quarantine, match="still read|most of a frame solid-filled"):
        stage(copy.deepcopy(received), ctx)
    assert CLEAN_PIXEL_DATA not in ctx.declared_options
    assert ctx.reports[0].details["verification"] == "failed"


def test_paste_changes_only_masked_pixels():
    frame = np.arange(100, dtype=np.int16).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:4] = True
    out = paste(frame, np.zeros_like(frame), mask)
    assert (out[mask] == 0).all() and np.array_equal(out[~mask], frame[~mask])


@pytest.mark.parametrize("backend", ["telea", "fill"])
def test_backends_keep_dtype_and_range(backend, finder):
    received = encode(make_mono(16, True, bits_stored=12, text=True), "explicit").ds
    out, ctx = run(make_stage(finder, backend=backend), received)
    frames = decode(out).frames
    assert frames.dtype == np.int16
    assert frames.min() >= -2048 and frames.max() <= 2047
    assert ctx.reports[0].details["backend"] == backend


def test_keep_safe_with_the_real_phi_classifier():
    pytest.importorskip("models.phi")
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds
    truth = list(zip(case.boxes, ["DOE^JANE", "ID 4471203", "LYMPH NODE"], strict=True))
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "policy": "keep_safe"}), "cpu",
                       finder=StubFinder(truth))
    _, ctx = run(stage, received)
    counts = ctx.reports[0].counts
    assert counts["regions_kept"] == 1 and counts["regions_redacted"] == 2


def test_tiles_cover_large_frames_with_overlap():
    from gateway.pixels.detect import TILE_OVERLAP, tiles

    for shape in [(512, 512), (1025, 1024), (2048, 1680), (3062, 2394)]:
        cover = np.zeros(shape, np.int32)
        boxes = tiles(shape, 1024)
        for b in boxes:
            assert b.x1 - b.x0 <= 1024 and b.y1 - b.y0 <= 1024
            cover[b.y0:b.y1, b.x0:b.x1] += 1
        assert cover.min() >= 1
        if len(boxes) > 1:
            xs = sorted({b.x0 for b in boxes})
            for left, right in itertools.pairwise(xs):
                assert max(b.x1 for b in boxes if b.x0 == left) - right >= TILE_OVERLAP


def test_large_frame_text_across_a_tile_boundary_is_removed(finder):
    import cv2

    case = make_mono(16, False, bits_stored=12, rows=1100, cols=2200, text=True)
    received = encode(case, "explicit").ds
    arr = decode(received).frames[0].copy()
    ink = np.zeros(arr.shape, np.uint8)
    # Tiles of 1024 over 2200 columns meet around x = 1100: write a name across it.
    cv2.putText(ink, "DOE^JANE 4471203", (1020, 600), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 255, 1, cv2.LINE_AA)
    arr[ink > 0] = 4095
    received.PixelData = arr.tobytes()
    out, ctx = run(make_stage(finder), received)
    assert ctx.reports[0].details["verification"].startswith("passed")
    assert not FrameDetector(finder).detect(decode(out), out).boxes
    covered = np.zeros(arr.shape, bool)
    for r in ctx.reports[0].details["regions"] + ctx.reports[0].details["fallback_regions"]:
        x0, y0, x1, y1 = r["box"]
        covered[y0:y1, x0:x1] = True
    assert covered[ink > 0].mean() > 0.95, "the line is redacted on both sides of the tile seam"


def test_the_audit_gets_a_category_per_region_never_its_text():
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds
    truth = list(zip(case.boxes, ["DOE^JANE", "ID 4471203", "LIVER"], strict=True))
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True}), "cpu", finder=StubFinder(truth),
                       classify=lambda text, ids: {"DOE^JANE": "name", "ID 4471203": "id"}.get(text, "safe"),
                       identifiers_from=lambda ds: None)
    _, ctx = run(stage, received)
    details = ctx.reports[0].details
    assert details["categories"] == {"id": 1, "name": 1, "safe": 1}
    assert sorted(r["category"] for r in details["regions"]) == ["id", "name", "safe"], "redact_all still redacts all"
    assert "DOE" not in json.dumps(details) and "4471203" not in json.dumps(details)


def test_categories_can_be_left_out_of_the_audit():
    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds

    class Unread(StubFinder):
        def readings(self, image, regions):
            raise AssertionError("nothing should be read")

    cfg = PixelsConfig.model_validate({"enabled": True, "audit_categories": False})
    _, ctx = run(PixelStage(cfg, "cpu", finder=Unread()), received)
    details = ctx.reports[0].details
    assert "categories" not in details and all("category" not in r for r in details["regions"])


def test_recognized_text_never_reaches_reports_or_logs(caplog):
    import logging

    case = make_mono(bits=8, text=True)
    received = encode(case, "explicit").ds
    truth = list(zip(case.boxes, ["DOE^JANE", "ID 4471203", "LYMPH NODE"], strict=True))
    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "policy": "keep_safe"}), "cpu",
                       finder=StubFinder(truth), classify=lambda t, i: "safe" if t == "LYMPH NODE" else "name",
                       identifiers_from=lambda ds: None)
    with caplog.at_level(logging.DEBUG):
        _, ctx = run(stage, received)
    blob = json.dumps([{"c": r.counts, "d": r.details} for r in ctx.reports], default=str).upper()
    blob += caplog.text.upper()
    for secret in ("DOE^JANE", "4471203", "LYMPH NODE"):
        assert secret not in blob
