"""The biometric stage on generated chest radiographs: what it changes, what it keeps, what it
refuses, and what it tells the audit."""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from pydicom import Dataset

from gateway.biometric.config import BiometricConfig
from gateway.biometric.stage import BiometricStage
from gateway.pipeline.stage import (
    CLEAN_PIXEL_DATA,
    CLEAN_RECOGNIZABLE_VISUAL_FEATURES,
    InstanceContext,
    Quarantine,
)
from models.biometric.quality import ssim
from tests.biometric.synth import make_chest

SECRET = b"s" * 32


def _roundtrip(ds: Dataset) -> Dataset:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def _run(stage: BiometricStage, ds: Dataset) -> tuple[Dataset, InstanceContext]:
    original = _roundtrip(ds)
    ctx = InstanceContext(original=original, profile="research-cxr")
    return stage(_roundtrip(ds), ctx), ctx


def _stage(fixed_flow, **settings) -> BiometricStage:
    return BiometricStage(BiometricConfig(profiles=["research-cxr"], **settings), SECRET, model=fixed_flow)


def test_a_chest_radiograph_is_deformed_and_keeps_its_type_depth_and_display(fixed_flow):
    ds = make_chest(512, 448, seed=1)
    out, ctx = _run(_stage(fixed_flow), ds)
    before, after = ds.pixel_array, _roundtrip(out).pixel_array
    assert after.dtype == before.dtype and after.shape == before.shape
    assert not np.array_equal(after, before)
    assert 0 <= after.min() and after.max() <= 4095  # BitsStored 12
    quality = ssim(before / 4095.0, after / 4095.0)
    assert 0.5 < quality < 0.999
    for keyword in ("PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "WindowCenter", "WindowWidth", "RescaleSlope", "BurnedInAnnotation"):
        assert out[keyword].value == ds[keyword].value, keyword
    assert str(out.file_meta.TransferSyntaxUID) == str(ds.file_meta.TransferSyntaxUID)
    assert ctx.method_notes == [f"biometric {_stage(fixed_flow).version}"[:64]]
    assert CLEAN_RECOGNIZABLE_VISUAL_FEATURES not in ctx.declared_options  # not claimed (model card)
    assert CLEAN_PIXEL_DATA not in ctx.declared_options  # that is the pixel stage's to declare


def test_the_report_names_method_strength_and_model_never_a_value(fixed_flow):
    _out, ctx = _run(_stage(fixed_flow), make_chest(256, 256))
    (report,) = ctx.reports
    assert report.stage == "biometric"
    assert report.counts == {"instances_anonymized": 1}
    details = report.details
    assert details["method"] == "prichexy" and details["mu"] == 0.01
    assert details["version"] == "fixed-flow (numpy)"
    assert 0 < details["max_displacement_px"] <= 0.01 * 255 / 2 + 1e-6
    assert set(details) == {"method", "mu", "version", "max_displacement_px", "transfer_syntax", "seconds"}


def test_the_same_instance_gives_the_same_bytes(fixed_flow):
    ds = make_chest(300, 260, seed=2)
    stage = _stage(fixed_flow)
    assert _run(stage, ds)[0].PixelData == _run(stage, ds)[0].PixelData


def test_monochrome1_is_rendered_inverted_for_the_generator_and_written_as_monochrome1(fixed_flow):
    seen = []

    class Spy(type(fixed_flow)):
        def flow(self, image01):
            seen.append(image01)
            return super().flow(image01)

    ds2 = make_chest(256, 256, seed=3)
    ds1 = make_chest(256, 256, seed=3, photometric="MONOCHROME1")
    stage = _stage(Spy())
    out1, _ = _run(stage, ds1)
    _run(stage, ds2)
    np.testing.assert_allclose(seen[0], seen[1], atol=2e-3)  # the same display image
    assert out1.PhotometricInterpretation == "MONOCHROME1"


@pytest.mark.parametrize("change, count", [
    ({"modality": "CT"}, "instances_skipped_not_radiograph"),
    ({"body_part": "HAND"}, "instances_skipped_not_chest"),
    ({"view": "LL"}, "instances_skipped_not_frontal"),
    ({"frames": 2}, "instances_skipped_multiframe"),
])
def test_other_instances_pass_byte_for_byte_and_are_counted(fixed_flow, change, count):
    ds = make_chest(128, 128, **change)
    out, ctx = _run(_stage(fixed_flow), ds)
    assert out.PixelData == ds.PixelData
    assert ctx.reports[0].counts == {"instances_skipped": 1, count: 1}
    assert CLEAN_RECOGNIZABLE_VISUAL_FEATURES not in ctx.declared_options and ctx.method_notes == []


def test_an_unstated_body_part_is_held_back_unless_configured(fixed_flow):
    ds = make_chest(128, 128, body_part=None)
    with pytest.raises(Quarantine, match="body part not stated"):
        _run(_stage(fixed_flow), ds)
    out, ctx = _run(_stage(fixed_flow, unstated_body_part="skip"), ds)
    assert out.PixelData == ds.PixelData and "instances_skipped_body_part_unstated" in ctx.reports[0].counts
    out, ctx = _run(_stage(fixed_flow, unstated_body_part="apply"), ds)
    assert out.PixelData != ds.PixelData


def test_an_unstated_view_is_taken_as_frontal_and_counted(fixed_flow):
    _out, ctx = _run(_stage(fixed_flow), make_chest(128, 128, view=None))
    assert ctx.reports[0].counts == {"instances_anonymized": 1, "instances_view_unstated": 1}


def test_a_colour_chest_radiograph_is_held_back(fixed_flow):
    ds = make_chest(64, 64)
    rgb = np.repeat((ds.pixel_array >> 4).astype(np.uint8)[..., None], 3, axis=2)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.tobytes()
    with pytest.raises(Quarantine, match="greyscale"):
        _run(_stage(fixed_flow), ds)


def test_a_generator_that_cannot_load_quarantines_with_a_fixed_reason(tmp_path):
    stage = BiometricStage(BiometricConfig(profiles=["p"], weights_dir=tmp_path), SECRET)
    with pytest.raises(Quarantine) as caught:
        _run(stage, make_chest(64, 64))
    assert caught.value.reason == "biometric model unavailable (FileNotFoundError)"


def test_undecodable_pixel_data_is_held_back(fixed_flow):
    ds = make_chest(64, 64)
    ds.PixelData = ds.PixelData[:100]
    with pytest.raises(Quarantine, match="decode|match"):
        _run(_stage(fixed_flow), ds)


def test_dp_pix_pixelizes_repeatably_for_one_key_and_differently_for_another():
    config = BiometricConfig(profiles=["p"], method="dp_pix", dp_pix={"cell": 8, "working_size": 64})
    ds = make_chest(256, 256, seed=4)
    a = _run(BiometricStage(config, SECRET), ds)[0]
    b = _run(BiometricStage(config, SECRET), ds)[0]
    c = _run(BiometricStage(config, b"t" * 32), ds)[0]
    assert a.PixelData == b.PixelData != c.PixelData
    pixels = _roundtrip(a).pixel_array
    cells = pixels.reshape(8, 32, 8, 32)  # 64 px working size, cells of 8: 8 x 8 cells of 32 px here
    assert np.all(cells == cells[:, :1, :, :1])
    report = _run(BiometricStage(config, SECRET), ds)[1].reports[0]
    assert report.details["version"] == "dp-pix-b8-m1-eps0.1-at64" and "mu" not in report.details


def test_the_real_onnx_generator_runs_in_the_stage(exported_generator):
    config = BiometricConfig(profiles=["p"], weights_dir=exported_generator)
    stage = BiometricStage(config, SECRET)
    ds = make_chest(512, 512, seed=5)
    out, ctx = _run(stage, ds)
    assert out.PixelData != ds.PixelData
    assert ctx.reports[0].details["version"] == "test-generator (onnxruntime)"
    again, _ = _run(BiometricStage(config, SECRET), copy.deepcopy(ds))
    assert again.PixelData == out.PixelData
