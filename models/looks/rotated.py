"""The rotated look: the working scale on crops of the image turned a quarter turn, for lines set
vertically (side labels) that the first pass does not answer at all.

The crops are found on the image itself, not on the detector's answer: columns of strokes, thin
and tall, that no look has boxed yet (``columns``), a few milliseconds of morphology. Turning the
whole frame instead cost a full pass on every image (7-14 ms per 512² image). Unchecked, a turned
image's long vertical edges (posterised lung) pass for lines of text, so a line is taken only when
the recogniser reads it, one way up or the other, as letters or digits with confidence. The
vertical look (`models.looks.vertical`) makes the same check around tall first-pass responses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.tiling import at_scale, prob_map
from models.postprocess import boxes_from_prob, components
from models.regions import not_yet_found, to_region

if TYPE_CHECKING:
    from models.inference import TextFinder

#: Only boxes that are lines in the turned image: at least this many times as wide as tall.
ROTATED_MIN_ASPECT = 2.0
#: ... read as at least this many letters or digits, at this mean confidence.
ROTATED_MIN_CHARS = 3
ROTATED_MIN_CONFIDENCE = 0.8
#: In the columns of strokes, also at least this many different ones: a depth ruler's ticks,
#: turned, read as "TTTTTTTTTT" with confidence.
COLUMN_MIN_DISTINCT = 2
#: Strokes: pixels whose 3x3 morphological gradient in the detector's view reaches this, ...
STROKE_CONTRAST = 48
#: ... joined down the image across gaps up to this many pixels (between letters and words), ...
STROKE_JOIN = 11
#: ... make a column when it is this wide (a turned line's height, original pixels), at least
#: COLUMN_MIN_ASPECT times as tall as wide and COLUMN_MIN_HEIGHT tall, strokes filling a share
#: COLUMN_MIN_FILL of its box.
COLUMN_WIDTH = (4, 48)
COLUMN_MIN_ASPECT = 2.5
COLUMN_MIN_HEIGHT = 16
COLUMN_MIN_FILL = 0.2
#: At most this many columns are turned per image, the tallest first: speckled images (ultrasound,
#: radiographs' noise) have dozens, and the cost stays bounded.
MAX_COLUMNS = 6
#: A line found in a column's crop is cut to the column's length and this many pixels more at each
#: end: in a crop the line extension runs on to the crop's edge, and the recogniser, reading that
#: blank too, doubts the line ("33Y O" at 0.75 where the cut line reads at 0.96).
COLUMN_END = 4


def look(finder: TextFinder, display: np.ndarray, gray: np.ndarray, scale: float, found: list) -> list:
    """Boxes of vertical lines, not yet ``found``, seen at the working scale in crops of ``gray``
    around its columns of strokes turned a quarter turn, and confirmed by the recogniser (none when
    no recogniser is shipped)."""
    tall = columns(gray, found)[:MAX_COLUMNS]
    # the recogniser is loaded only once an image has candidates for it to confirm
    if not tall or finder.recognizer is None:
        return []
    h, w = gray.shape
    lines = []
    for x0, y0, x1, y1 in tall:
        m = x1 - x0  # context for the detector: a column's width on every side
        area = (max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m))
        top, bottom = y0 - COLUMN_END, y1 + COLUMN_END
        lines += [(xa, max(ya, top), xb, min(yb, bottom), score)
                  for xa, ya, xb, yb, score in turned_lines(finder, gray, scale, area) if ya < bottom and yb > top]
    return confirmed(finder, display, lines, found, COLUMN_MIN_DISTINCT)


def columns(gray: np.ndarray, found: list) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1), tallest first, of the columns of strokes in ``gray`` (see
    STROKE_CONTRAST) not mostly inside ``found``."""
    kernel = np.ones((3, 3), np.uint8)
    strokes = (cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, kernel) >= STROKE_CONTRAST).astype(np.uint8)
    joined = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, np.ones((STROKE_JOIN, 1), np.uint8))
    count, _, stats = components(joined)
    x, y, w, h, area = (stats[1:count, k] for k in range(5))
    keep = ((w >= COLUMN_WIDTH[0]) & (w <= COLUMN_WIDTH[1]) & (h >= COLUMN_MIN_ASPECT * w)
            & (h >= COLUMN_MIN_HEIGHT) & (area >= COLUMN_MIN_FILL * w * h))
    boxes = [(int(x[i]), int(y[i]), int(x[i] + w[i]), int(y[i] + h[i]), 1.0)
             for i in sorted(np.flatnonzero(keep), key=lambda i: -h[i])]
    return [box[:4] for box in not_yet_found(boxes, found, gray.shape)]


def turned_lines(finder: TextFinder, gray: np.ndarray, scale: float, area: tuple[int, int, int, int]) -> list:
    """Boxes (in ``gray``'s pixels) of lines found at the working scale in ``area`` of ``gray``
    turned a quarter turn: lines there, vertical here."""
    xa, ya, xb, yb = area
    turned = np.ascontiguousarray(np.rot90(gray[ya:yb, xa:xb]))  # turned[i, j] = crop[j, width - 1 - i]
    work = at_scale(turned, scale)
    width = xb - xa
    return [(xa + width - y1, ya + x0, xa + width - y0, ya + x1, score)
            for x0, y0, x1, y1, score in boxes_from_prob(prob_map(finder.detector, work), scale, finder.postprocess)
            if x1 - x0 >= ROTATED_MIN_ASPECT * (y1 - y0)]


def confirmed(finder: TextFinder, display: np.ndarray, lines: list, found: list, distinct: int = 1) -> list:
    """``lines`` not yet ``found`` that the recogniser reads as text in ``display`` (see
    ROTATED_MIN_CHARS), with at least ``distinct`` different letters or digits."""
    shape = display.shape[:2]
    unique: list = []
    for line in not_yet_found(lines, found, shape):  # once, where crops overlap
        unique += not_yet_found([line], unique, shape)
    pairs = [(line, region) for line in unique if (region := to_region(line, shape)) is not None]
    if not pairs:
        return []
    readings = finder.readings(display, [region for _, region in pairs])
    return [line for (line, _), (text, confidence) in zip(pairs, readings, strict=True)
            if confidence >= ROTATED_MIN_CONFIDENCE and sum(c.isalnum() for c in text) >= ROTATED_MIN_CHARS
            and len({c for c in text if c.isalnum()}) >= distinct]
