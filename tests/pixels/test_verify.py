"""What verification counts as text left behind, and what it does not."""

from __future__ import annotations

import numpy as np

from gateway.pixels.detect import FrameDetector
from gateway.pixels.regions import Box
from gateway.pixels.verify import check_frame
from models.regions import TextRegion

ROWS, COLS = 200, 320
FILL = Box(40, 80, 280, 110)  # a solid-filled redaction


class _Scripted:
    """Answers the whole frame with ``on_frame`` and any smaller image (a crop) with ``on_crop``."""

    version = "scripted"

    def __init__(self, on_frame, on_crop):
        self.on_frame, self.on_crop = on_frame, on_crop

    def detect(self, image):
        return list(self.on_frame if image.shape[:2] == (ROWS, COLS) else self.on_crop)

    def detect_batch(self, images):
        return [self.detect(i) for i in images]

    def readings(self, image, regions):
        return [("", 0.0)] * len(regions)


def _frame_with_fill():
    display = np.random.default_rng(0).integers(0, 255, (ROWS, COLS), dtype=np.uint8)
    display[FILL.y0:FILL.y1, FILL.x0:FILL.x1] = 128
    restored = np.zeros((ROWS, COLS), bool)
    restored[FILL.y0:FILL.y1, FILL.x0:FILL.x1] = True
    return display, restored


def test_the_edge_of_a_solid_fill_is_not_text_left_behind():
    display, restored = _frame_with_fill()
    on_edge = TextRegion(40, 60, 280, 90, 0.9)  # straddles the top edge of the fill
    check = check_frame(FrameDetector(_Scripted([on_edge], [])), display, 0, restored, [], filled=restored)
    assert check.failures == []


def test_text_beside_a_fill_is_still_a_failure():
    display, restored = _frame_with_fill()
    on_edge = TextRegion(40, 60, 280, 90, 0.9)
    # Seen again with the fill's edge smoothed away, the crop still shows text above the fill.
    beside = TextRegion(20, 10, 200, 40, 0.9)
    check = check_frame(FrameDetector(_Scripted([on_edge], [beside])), display, 0, restored, [], filled=restored)
    assert [40, 60, 280, 90] in [b.coords() for b in check.failures]


def test_anything_on_inpainted_pixels_is_a_failure():
    display, restored = _frame_with_fill()
    on_edge = TextRegion(40, 60, 280, 90, 0.9)
    check = check_frame(FrameDetector(_Scripted([on_edge], [])), display, 0, restored, [], filled=None)
    assert len(check.failures) == 1


def test_text_away_from_every_restored_part_is_a_failure():
    display, restored = _frame_with_fill()
    elsewhere = TextRegion(10, 150, 90, 170, 0.9)
    check = check_frame(FrameDetector(_Scripted([elsewhere], [])), display, 0, restored, [], filled=restored)
    assert [b.coords() for b in check.failures] == [[10, 150, 90, 170]]
