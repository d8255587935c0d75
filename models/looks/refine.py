"""The second look: where the first pass saw faint text but boxed none, the area again at twice
the scale.

Text 4-6 px tall in a large image is a blur of one or two output pixels at the working scale and
plain text at twice it. Only small text is taken from it, and only where the first pass peaked:
larger text was the first pass's to find, and textures seen at twice the scale are what this look
gets wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.first import unboxed
from models.looks.tiling import prob_map
from models.postprocess import boxes_from_prob, components

if TYPE_CHECKING:
    from models.inference import TextFinder

#: First-pass probability above which an area not yet boxed is looked at again.
REFINE_THRESHOLD = 0.05
#: A second-look box is kept only if the first pass peaked at this inside it (4-5 px text often
#: peaks at 0.2-0.3 only).
REFINE_PEAK = 0.08
#: Nor one whose short side is over this many working pixels: larger text was the first pass's.
REFINE_MAX_TEXT = 12
#: Context kept around each second-look area, and the gap below which areas are merged (output px).
REFINE_CONTEXT = 12
#: Working scales above this get no second look (a x4 image of a x4 image is not worth it).
REFINE_MAX_SCALE = 2.0


def crop_areas(seeds: np.ndarray, scale: float, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Areas (x0, y0, x1, y1 in original pixels) around ``seeds`` (uint8 at the map's stride), with
    REFINE_CONTEXT output pixels of context; seeds nearer than that share one area."""
    c = REFINE_CONTEXT
    grown = cv2.dilate(seeds, np.ones((2 * c + 1, 2 * c + 1), np.uint8))
    count, _, stats = components(grown)
    h, w = shape
    return [(int(x * 2 / scale), int(y * 2 / scale),
             min(w, int(np.ceil((x + bw) * 2 / scale))), min(h, int(np.ceil((y + bh) * 2 / scale))))
            for x, y, bw, bh, _ in stats[1:count]]


def look(finder: TextFinder, gray: np.ndarray, prob: np.ndarray, found: list, scale: float) -> list:
    """Boxes found at twice ``scale`` in the areas of faint first-pass response not yet boxed."""
    faint = unboxed(prob, found, scale, REFINE_THRESHOLD)
    count, labels, _ = components(faint)
    if count <= 1:
        return []
    peak = np.zeros(count, np.float32)
    np.maximum.at(peak, labels[faint > 0], prob[faint > 0])
    seeds = (peak >= REFINE_PEAK)[labels].astype(np.uint8)
    if not seeds.any():
        return []
    out = []
    for xa, ya, xb, yb in crop_areas(seeds, scale, gray.shape):
        crop = gray[ya:yb, xa:xb]
        if crop.size == 0:
            continue
        fine = 2 * scale
        prob2 = prob_map(finder.detector, cv2.resize(crop, None, fx=fine, fy=fine, interpolation=cv2.INTER_LINEAR))
        for x0, y0, x1, y1, s in boxes_from_prob(prob2, fine, finder.postprocess):
            x0, y0, x1, y1 = x0 + xa, y0 + ya, x1 + xa, y1 + ya
            if min(x1 - x0, y1 - y0) * scale > REFINE_MAX_TEXT:
                continue
            seen = prob[int(y0 * scale / 2):int(np.ceil(y1 * scale / 2)), int(x0 * scale / 2):int(np.ceil(x1 * scale / 2))]
            if seen.size and seen.max() >= REFINE_PEAK:
                out.append((x0, y0, x1, y1, s))
    return out
