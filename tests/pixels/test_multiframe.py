"""Multi-frame instances: static overlays found once, duplicates skipped, mid-run text caught."""

from __future__ import annotations

import numpy as np
from conftest import run, written
from synth import make_cine, roundtrip

from gateway.pixels.decode import decode
from gateway.pixels.detect import FrameDetector


def test_static_banner_and_late_caption(stage, finder):
    case = make_cine(frames=8, changing_text_frame=4)
    received = roundtrip(case.ds)
    result = FrameDetector(finder).detect(decode(received), received)
    # Frames come in identical pairs: 4 distinct frames checked, 4 duplicates skipped.
    assert result.frames_checked == 4 and result.frames_skipped == 4
    static = [b for b in result.boxes if b.frame is None]
    late = [b for b in result.boxes if b.frame is not None and b.frame >= 4]
    assert static, "the banner present in every frame is a static overlay"
    assert {b.frame for b in late} >= {4, 5, 6, 7}, "the caption from frame 4 on is found in each of those frames"
    assert not [b for b in result.boxes if b.frame is not None and b.frame < 4 and b.y0 > 90], \
        "frames before the caption appears keep their pixels there"

    out, ctx = run(stage, received)
    back = written(out)
    frames = decode(back).frames
    assert frames.shape[0] == 8 and int(back.NumberOfFrames) == 8
    after = FrameDetector(finder).detect(decode(back), back)
    assert not after.boxes
    # Frames 0-3 are untouched where the caption will later be.
    src = decode(received).frames
    assert np.array_equal(frames[:4, 100:, 60:], src[:4, 100:, 60:])
    report = ctx.reports[0].details
    assert report["frames_checked"] == 4 and report["frames_skipped_duplicate"] == 4
    assert report["verification"].startswith("passed")


def test_cine_without_text_is_untouched(stage):
    case = make_cine(frames=6, changing_text_frame=None)
    # Remove the banner: draw nothing.
    received = roundtrip(case.ds)
    arr = decode(received).frames.copy()
    arr[:, :24, :] = arr[:, 24:25, :]
    received.PixelData = arr.tobytes()
    received = roundtrip(received)
    before = received.PixelData
    out, ctx = run(stage, received)
    assert out.PixelData == before
    assert ctx.reports[0].details["regions"] == []
