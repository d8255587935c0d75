"""What verification counts as text left behind, and what it does not."""

from __future__ import annotations

import numpy as np

from gateway.pixels.detect import FrameDetector
from gateway.pixels.regions import Box
from gateway.pixels.verify import check_frame, reader
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


class _Reading(_Scripted):
    """A scripted finder that reads: every region reads as ``text`` at ``confidence``."""

    reads_text = True

    def __init__(self, on_frame, on_crop, text, confidence):
        super().__init__(on_frame, on_crop)
        self.text, self.confidence = text, confidence

    def readings(self, image, regions):
        return [(self.text, self.confidence)] * len(regions)


def _check_with(finder, filled):
    display, restored = _frame_with_fill()
    return check_frame(FrameDetector(finder), display, 0, restored, [], filled=restored if filled else None,
                       readable=reader(finder))


def test_what_reads_as_nothing_on_restored_pixels_is_not_text_left_behind():
    smear = TextRegion(40, 85, 280, 105, 0.9)  # a detection on the inpainted redaction
    check = _check_with(_Reading([smear], [], "-", 0.9), filled=False)
    assert check.failures == [] and check.unread == 1


def test_what_reads_as_letters_on_restored_pixels_is_still_a_failure():
    residue = TextRegion(40, 85, 280, 105, 0.9)
    check = _check_with(_Reading([residue], [], "DOE J", 0.6), filled=False)
    assert len(check.failures) == 1 and check.checks == ["restored"]


def test_ticks_away_from_every_restored_part_that_read_as_nothing_are_left_alone():
    ticks = TextRegion(300, 20, 318, 190, 0.95)
    check = _check_with(_Reading([ticks], [], "", 0.0), filled=True)
    assert check.failures == []


def test_text_read_away_from_every_restored_part_is_a_failure_of_its_own_check():
    elsewhere = TextRegion(10, 150, 90, 170, 0.9)
    check = _check_with(_Reading([elsewhere], [], "ID 4471", 0.9), filled=True)
    assert check.checks == ["elsewhere"]


def test_a_detection_just_beside_a_fill_is_its_border():
    display, restored = _frame_with_fill()
    near = TextRegion(40, 111, 280, 113, 0.9)  # starts FILL_BORDER px under the fill, touches none of it
    finder = _Reading([near], [], "ID 4471", 0.9)
    check = check_frame(FrameDetector(finder), display, 0, restored, [], filled=restored, readable=reader(finder))
    assert check.failures == []


def test_a_finder_that_cannot_read_leaves_the_detector_to_decide():
    assert reader(_Scripted([], [])) is None
