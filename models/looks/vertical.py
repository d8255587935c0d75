"""The vertical look: the rotated look's check on crops only, around tall first-pass responses.

The detector answers a vertical line faintly, in pieces whose mean stays under the minimum score
(of a 10 px vertical line perhaps only a speck in every other word); turned upright, the line is
plain text. An image without such responses costs nothing; the rotated look (models.looks.rotated)
then searches the image itself for tall columns of strokes the first pass did not answer at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.first import unboxed
from models.looks.refine import crop_areas
from models.looks.rotated import confirmed, turned_lines
from models.postprocess import components

if TYPE_CHECKING:
    from models.inference import TextFinder

#: First-pass responses above this, not yet boxed, are candidates ...
VERTICAL_THRESHOLD = 0.1
#: ... when at least this many times as tall as wide and this many output pixels tall.
VERTICAL_MIN_ASPECT = 1.2
VERTICAL_MIN_HEIGHT = 4
#: Or when they are columns of specks: responses each too small to be tall, stacked at most
#: VERTICAL_SPECK_GAP output pixels apart, together at least VERTICAL_COLUMN_ASPECT times as tall
#: as wide and VERTICAL_COLUMN_MIN_HEIGHT tall.
VERTICAL_SPECK_GAP = 24
VERTICAL_COLUMN_ASPECT = 3.0
VERTICAL_COLUMN_MIN_HEIGHT = 16


def look(finder: TextFinder, display: np.ndarray, gray: np.ndarray, prob: np.ndarray, scale: float,
         found: list) -> list:
    """The rotated look on crops around tall first-pass responses not yet boxed."""
    faint = unboxed(prob, found, scale, VERTICAL_THRESHOLD)
    seeds = _tall_responses(faint) | _columns_of_specks(faint)
    # the recogniser is loaded only once an image has candidates for it to confirm
    if not seeds.any() or finder.recognizer is None:
        return []
    # one crop per cluster of tall responses (the pieces of one line), with context
    lines = []
    for crop in crop_areas(seeds, scale, gray.shape):
        lines += turned_lines(finder, gray, scale, crop)
    return confirmed(finder, display, lines, found)


def _tall_responses(faint: np.ndarray) -> np.ndarray:
    """The components of ``faint`` (uint8 0/1) that are tall (VERTICAL_MIN_ASPECT, VERTICAL_MIN_HEIGHT)."""
    _, labels, stats = components(faint)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    tall = (heights >= VERTICAL_MIN_ASPECT * widths) & (heights >= VERTICAL_MIN_HEIGHT)
    tall[0] = False
    return tall[labels].astype(np.uint8)


def _columns_of_specks(faint: np.ndarray) -> np.ndarray:
    """The pixels of ``faint`` (uint8 0/1) in columns of specks (see VERTICAL_SPECK_GAP)."""
    gap = VERTICAL_SPECK_GAP
    joined = cv2.dilate(faint, np.ones((gap + 1, 1), np.uint8))  # each speck reaches gap / 2 up and down
    _, labels, stats = components(joined)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT] - gap, stats[:, cv2.CC_STAT_WIDTH]
    column = (heights >= VERTICAL_COLUMN_ASPECT * widths) & (heights >= VERTICAL_COLUMN_MIN_HEIGHT)
    column[0] = False
    return column[labels].astype(np.uint8) & faint
