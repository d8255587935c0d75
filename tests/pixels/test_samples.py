"""The public samples in ../shared/samples (skipped when the folder is absent).

Decoder coverage over every transfer syntax and photometric interpretation there, the file
without pixel data, and the stage's outcome on files with visible text: redacted and verified,
or quarantined — never forwarded unchanged with text the detector still sees.
"""

from __future__ import annotations

import csv

import pytest
from conftest import SAMPLES, run
from pydicom import dcmread

from gateway.pipeline.stage import Quarantine
from gateway.pixels.decode import decode, has_pixel_data
from gateway.pixels.detect import FrameDetector

pytestmark = [
    pytest.mark.samples,
    pytest.mark.skipif(not (SAMPLES / "INVENTORY.tsv").exists(), reason="../shared/samples absent"),
]


def _rows():
    if not (SAMPLES / "INVENTORY.tsv").exists():
        return []
    with open(SAMPLES / "INVENTORY.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _rows()


@pytest.mark.parametrize("row", ROWS, ids=[r["path"].split("/")[-1][:40] for r in ROWS])
def test_every_sample_decodes(row):
    ds = dcmread(SAMPLES / row["path"], force=True)
    if not has_pixel_data(ds):
        return
    decoded = decode(ds)
    assert decoded.n_frames == int(ds.get("NumberOfFrames", 1) or 1)


TEXT_SMALL = [r for r in ROWS if r["has_visible_text"] == "yes"
              and int(r["RowsxColsxFrames"].split("x")[2]) == 1
              and int(r["RowsxColsxFrames"].split("x")[0]) * int(r["RowsxColsxFrames"].split("x")[1]) <= 800 * 1000][:6]


@pytest.mark.parametrize("row", TEXT_SMALL, ids=[r["path"].split("/")[-1][:40] for r in TEXT_SMALL])
def test_text_sample_is_redacted_or_quarantined(row, stage, finder):
    ds = dcmread(SAMPLES / row["path"], force=True)
    try:
        out, ctx = run(stage, ds)
    except Quarantine:
        return  # kept back: safe
    details = ctx.reports[0].details
    if details["regions"]:
        assert details["verification"].startswith("passed")
        assert out.BurnedInAnnotation == "NO"
        assert not FrameDetector(finder).detect(decode(out), out).boxes
