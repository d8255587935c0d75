"""The pixel stage with the region verifier on (``pixels.verifier``)."""

from __future__ import annotations

import pytest
from conftest import real_finder, run
from pydicom import dcmread
from pydicom.data import get_testdata_file

from gateway.config import GatewayConfig
from gateway.pixels.policy import display_region
from gateway.pixels.regions import Box
from gateway.pixels.stage import PixelStage

pytestmark = pytest.mark.skipif(real_finder() is None, reason="no shipped weights")


def _stage(**pixels) -> PixelStage:
    return PixelStage(GatewayConfig.model_validate({"pixels": {"device": "cpu", **pixels}}))


def test_a_text_free_segmented_ct_passes_byte_for_byte_with_the_verifier():
    """eCT_Supplemental: the detector alone boxes part of its label map and the stage redacts it."""
    ds = dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    _, plain = run(_stage(), ds)
    assert plain.reports[0].details["regions"], "the detector alone redacts part of the label map"
    out, verified = run(_stage(verifier=True), ds)
    assert verified.reports[0].details["regions"] == []
    assert out.PixelData == ds.PixelData


def test_the_check_after_restoration_can_ask_the_verifier_about_the_gateways_regions():
    """The stage asks about what its check finds as the gateway's own regions, not the finder's."""
    from models.evaluate import _read_dicom

    finder = _stage(verifier=True).finder
    _, image = _read_dicom(get_testdata_file("eCT_Supplemental.dcm"))
    label_map = display_region(Box(69, 257, 87, 275))  # what the detector alone boxes there
    assert finder.doubted(image, [label_map]) == [True]
