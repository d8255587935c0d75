"""The pixel stage with the region verifier (``pixels.verifier``, on by default)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import real_finder, run
from pydicom import dcmread
from pydicom.data import get_testdata_file
from synth import make_mono

from gateway.pixels.config import PixelsConfig
from gateway.pixels.stage import PixelStage

pytestmark = pytest.mark.skipif(real_finder() is None, reason="no shipped weights")


def _stage(**pixels) -> PixelStage:
    return PixelStage(PixelsConfig.model_validate({"device": "cpu", **pixels}))


def test_a_text_free_segmented_ct_passes_byte_for_byte():
    """eCT_Supplemental: the detector alone boxes part of its label map and the stage redacted it;
    with the verifier those regions are set aside (read as no line, or doubted by the verdict)."""
    ds = dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    _, without = run(_stage(verifier=False), ds)
    assert without.reports[0].details["regions"], "the detector alone redacts part of the label map"
    out, verified = run(_stage(), ds)
    assert verified.reports[0].details["regions"] == []
    assert verified.reports[0].counts.get("regions_doubted", 0) <= len(without.reports[0].details["regions"])
    assert out.PixelData == ds.PixelData


def _wide_capture(text: bool):
    """The segmented CT on the left of a 1600 px wide capture, which the detector sees in two
    tiles, and a name on the far right, in the other tile."""
    from models.training.evaluate import read_dicom

    _, segmented_ct = read_dicom(Path(get_testdata_file("eCT_Supplemental.dcm")))
    pixels = np.zeros((512, 1600), np.uint8)
    pixels[:, :512] = segmented_ct
    if text:
        cv2.putText(pixels, "DOE^JANE 4471203", (1150, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    ds = make_mono(bits=8, rows=512, cols=1600, text=False).ds
    ds.PixelData = pixels.tobytes()
    return ds


def test_an_instance_with_text_keeps_the_regions_the_verifier_doubts_even_in_another_tile():
    """The verifier judges whole instances: a region set aside in one tile while text is believed
    in another could be a faint line of the same burned-in block."""
    _, plain = run(_stage(verifier=False), _wide_capture(text=False))
    false_regions = [r["box"] for r in plain.reports[0].details["regions"]]
    assert false_regions, "the detector alone boxes part of the label map"
    _, alone = run(_stage(), _wide_capture(text=False))
    assert alone.reports[0].details["regions"] == []
    _, with_text = run(_stage(), _wide_capture(text=True))
    redacted = [r["box"] for r in with_text.reports[0].details["regions"]]
    assert all(any(_covers(outer, box) for outer in redacted) for box in false_regions)
    assert any(box[0] > 1024 for box in redacted), "the name is redacted"


def _covers(outer, box, share: float = 0.9) -> bool:
    """Whether ``outer`` covers ``share`` of ``box`` (x0, y0, x1, y1): found again with the name
    present, a region may come out a pixel or two larger."""
    w = max(0, min(outer[2], box[2]) - max(outer[0], box[0]))
    h = max(0, min(outer[3], box[3]) - max(outer[1], box[1]))
    return w * h >= share * (box[2] - box[0]) * (box[3] - box[1])
