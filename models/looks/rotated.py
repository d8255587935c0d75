"""The rotated look: the working scale on the image turned a quarter turn, for lines set
vertically (side labels).

Unchecked, a turned image's long vertical edges (posterised lung) pass for lines of text, so a
line is taken only when the recogniser reads it, one way up or the other, as letters or digits
with confidence. Off by default (``TextFinder.with_rotated_look``, ``pixels.rotated_text``): it
finds 0.2-0.4 % more PHI on the synthetic sets but costs a full pass on every image. The vertical
look, on instead, makes the same check on crops only (`models.looks.vertical`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.looks.tiling import at_scale, prob_map
from models.postprocess import boxes_from_prob
from models.regions import not_yet_found, to_region

if TYPE_CHECKING:
    from models.inference import TextFinder

#: Only boxes that are lines in the turned image: at least this many times as wide as tall.
ROTATED_MIN_ASPECT = 2.0
#: ... read as at least this many letters or digits, at this mean confidence.
ROTATED_MIN_CHARS = 3
ROTATED_MIN_CONFIDENCE = 0.8


def look(finder: TextFinder, display: np.ndarray, gray: np.ndarray, scale: float, found: list) -> list:
    """Boxes of vertical lines, not yet ``found``, seen at the working scale in ``gray`` turned a
    quarter turn and confirmed by the recogniser (none when no recogniser is shipped)."""
    if finder.recognizer is None:
        return []
    h, w = gray.shape
    return confirmed(finder, display, turned_lines(finder, gray, scale, (0, 0, w, h)), found)


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


def confirmed(finder: TextFinder, display: np.ndarray, lines: list, found: list) -> list:
    """``lines`` not yet ``found`` that the recogniser reads as text in ``display`` (see
    ROTATED_MIN_CHARS)."""
    shape = display.shape[:2]
    unique: list = []
    for line in not_yet_found(lines, found, shape):  # once, where crops overlap
        unique += not_yet_found([line], unique, shape)
    pairs = [(line, region) for line in unique if (region := to_region(line, shape)) is not None]
    if not pairs:
        return []
    readings = finder.readings(display, [region for _, region in pairs])
    return [line for (line, _), (text, confidence) in zip(pairs, readings, strict=True)
            if confidence >= ROTATED_MIN_CONFIDENCE and sum(c.isalnum() for c in text) >= ROTATED_MIN_CHARS]
