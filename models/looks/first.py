"""The first look: the detector's map of the image at the working scale, and its components.

Every image gets it, and the other looks start from it: its map (``prob``) tells them where the
detector saw faint text, and its boxes (``found``) where they need not look again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from models.postprocess import boxes_from_prob

if TYPE_CHECKING:
    from models.inference import TextFinder


def look(finder: TextFinder, prob: np.ndarray, scale: float) -> tuple[list, list]:
    """Boxes of the working scale's components at the bar, and those scoring from the finder's
    ``faint_min_score`` up to it (none without a verifier): one pass over the components,
    each judged on its own."""
    bar = finder.postprocess.min_score
    if finder.faint_min_score is None or finder.faint_min_score >= bar:
        return boxes_from_prob(prob, scale, finder.postprocess), []
    boxes = boxes_from_prob(prob, scale, replace(finder.postprocess, min_score=finder.faint_min_score))
    return [b for b in boxes if b[4] >= bar], [b for b in boxes if b[4] < bar]


def unboxed(prob: np.ndarray, found: list, scale: float, threshold: float) -> np.ndarray:
    """Where the first pass saw faint text (above ``threshold``; uint8 0/1 at the map's stride)
    outside the boxes already ``found``: what is boxed will be redacted and needs no further look."""
    faint = (prob > threshold).astype(np.uint8)
    for x0, y0, x1, y1, _ in found:
        a = [int(v * scale / 2) for v in (x0, y0)]
        b = [int(np.ceil(v * scale / 2)) for v in (x1, y1)]
        faint[max(0, a[1]):b[1], max(0, a[0]):b[0]] = 0
    return faint
