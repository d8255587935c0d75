"""The rotated look, on by default: quarter-turned lines are found in crops around columns of
strokes, not by turning the whole frame."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.inference import DEFAULT_WEIGHTS
from models.looks import rotated
from models.metrics import coverage, union_mask
from models.training.synth import SynthConfig, generate
from tests.models.samples import needs_pinned_fonts

pytestmark = pytest.mark.skipif(not (Path(DEFAULT_WEIGHTS) / "detector.pt").exists(), reason="no shipped weights")


def _stage_finder(**pixels):
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    return PixelStage(PixelsConfig.model_validate({"device": "cpu", **pixels})).finder


def _covered(finder, image, boxes) -> list[bool]:
    mask = union_mask([r.box for r in finder.detect(image)], *image.shape[:2])
    return [coverage(b, mask) >= 0.7 for b in boxes]


@needs_pinned_fonts
def test_a_quarter_turned_phi_line_is_found_with_the_default_configuration():
    """Image 86 of seed 500 (training fonts): "33Y O" set vertically, which neither the first pass
    nor the vertical look answers; only the rotated look, on by default, finds it."""
    sample = generate(500, 86, SynthConfig(font_split="train"))
    turned = [line.box for line in sample.lines if line.rotated and line.phi]
    assert turned, "the generator no longer draws this image: pick another"
    assert all(_covered(_stage_finder(), sample.image, turned))
    assert not all(_covered(_stage_finder(rotated_text=False), sample.image, turned))


def test_a_vertical_line_of_letters_is_a_column_of_strokes_and_an_edge_is_not():
    image = np.full((200, 200), 20, np.uint8)
    image[:, 150:] = 200  # a long straight edge (a body's or a table's side)
    line = np.full((16, 120), 20, np.uint8)
    cv2.putText(line, "DOE 4471203", (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 230, 1, cv2.LINE_AA)
    image[40:160, 20:36] = np.rot90(line)  # the line turned a quarter turn, reading upwards
    ink_rows = np.flatnonzero((image[:, 20:36] > 100).any(axis=1))
    columns = rotated.columns(image, [])
    assert len(columns) == 1
    x0, y0, x1, y1 = columns[0]
    assert 18 <= x0 and x1 <= 38 and y0 <= ink_rows[0] and y1 > ink_rows[-1]
    assert rotated.columns(image, [(18.0, 38.0, 38.0, 162.0, 1.0)]) == []  # found already: no column
