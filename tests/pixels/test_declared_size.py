"""The worker decodes nothing past its caps: a decoder allocates what the header declares,
whatever the pixel data holds, so the header is checked before anything is decoded."""

from __future__ import annotations

import copy

import pytest

from gateway.pipeline.stage import InstanceContext, Quarantine
from gateway.pixels.config import PixelsConfig
from gateway.pixels.stage import PixelStage
from tests.pixels.synth import encode, make_mono


def _declaring(rows: int, columns: int, frames: int | None = None):
    """A tiny RLE instance whose header declares a huge image."""
    ds = encode(make_mono(bits=16, rows=64, cols=64), "rle").ds
    ds.Rows, ds.Columns = rows, columns
    if frames is not None:
        ds.NumberOfFrames = frames
    return ds


@pytest.mark.parametrize("rows, columns, frames", [(20000, 20000, 3), (65535, 65535, 1000)])
def test_an_image_declaring_more_than_the_cap_is_quarantined_undecoded(rows, columns, frames):
    stage = PixelStage(PixelsConfig(max_frames=100_000), device="cpu")
    ds = _declaring(rows, columns, frames)
    assert stage.prepare([ds, copy.deepcopy(ds)]) == [None, None]  # not decoded ahead either
    with pytest.raises(Quarantine, match="larger than pixels.max_pixel_bytes"):
        stage(ds, InstanceContext(original=ds))
    assert stage._finder is None  # refused before even the models were needed


def test_too_many_frames_is_quarantined_by_its_own_reason():
    stage = PixelStage(PixelsConfig(max_frames=10), device="cpu")
    ds = _declaring(64, 64, 11)
    with pytest.raises(Quarantine, match="more frames than pixels.max_frames"):
        stage(ds, InstanceContext(original=ds))
