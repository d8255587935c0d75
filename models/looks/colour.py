"""The colour look: the working scale again, on a colourful image's chroma and hue views.

Text whose colour differs from its background more than its brightness is faint or absent in the
luma the first pass sees. The chroma (`models.render.chroma`) shows text of another saturation;
the two opponent channels (`models.render.hue_views`) show text that differs from its label in
hue alone. At larger sizes these views box colour-Doppler flow, colour scales and colourful
photographs' structure, so only small boxes are taken, and the hue views' lines only when the
region verifier, shown the view, believes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.tiling import at_scale, prob_maps
from models.looks.verdict import VERIFY_SURE_SCORE, text_probabilities
from models.postprocess import boxes_from_prob, components
from models.regions import not_yet_found, to_region
from models.render import CHROMA_MIN, CHROMA_PIXELS, hue_views

if TYPE_CHECKING:
    from models.inference import TextFinder

#: Only boxes whose short side is at most this many working pixels are taken from the colour views.
COLOUR_MAX_TEXT = 48
#: The hue views are looked at around colourful ground with this much context (original px), and on
#: the whole image when those areas cover more than HUE_WHOLE_SHARE of it (`colourful_areas`).
HUE_CONTEXT = 24
HUE_WHOLE_SHARE = 0.5
#: A line seen only in a hue view is kept when the region verifier, shown that view, gives it at least
#: this probability of text: unchecked, the hue views box colour-Doppler flow and colour scales.
HUE_VERIFY_THRESHOLD = 0.8


def look(finder: TextFinder, display: np.ndarray, spread: np.ndarray | None, scale: float, found: list) -> list:
    """Boxes of text, not yet ``found``, seen at the working scale in the chroma ``spread`` of a
    colourful display image, and in the hue views of its colourful areas (with the region verifier
    only)."""
    if spread is None:
        return []
    shape = display.shape[:2]
    boxes = not_yet_found(_colour_boxes(finder, [spread], scale), found, shape)
    if finder.verifier is None:
        return boxes
    for xa, ya, xb, yb in colourful_areas(spread):
        for view in hue_views(display[ya:yb, xa:xb]):
            lines = [(x0 + xa, y0 + ya, x1 + xa, y1 + ya, s)
                     for x0, y0, x1, y1, s in _colour_boxes(finder, [view], scale)]
            boxes += _verified_in_view(finder, view, (xa, ya), lines, found + boxes, shape)
    return boxes


def colourful_areas(spread: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Where the hue views are looked at: around the colourful ground of an image (its chroma
    ``spread`` over CHROMA_MIN), HUE_CONTEXT px on every side; the whole image when that is most of it.

    Text that differs from its ground in hue alone is as colourful as its ground, so it lies there;
    a grey ultrasound fan with one coloured label pays for the label, not for the fan."""
    h, w = spread.shape
    colourful = (spread > CHROMA_MIN).astype(np.uint8)
    grown = cv2.dilate(colourful, np.ones((2 * HUE_CONTEXT + 1, 2 * HUE_CONTEXT + 1), np.uint8))
    count, labels, stats = components(grown)
    seen = np.bincount(labels[colourful > 0], minlength=count)
    areas = [(x, y, x + bw, y + bh) for k, (x, y, bw, bh, _) in enumerate(stats) if k and seen[k] >= CHROMA_PIXELS]
    if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in areas) > HUE_WHOLE_SHARE * h * w:
        return [(0, 0, w, h)]
    return areas


def _verified_in_view(finder: TextFinder, view: np.ndarray, origin: tuple[int, int], lines: list, found: list,
                      shape: tuple[int, int]) -> list:
    """``lines`` not yet ``found`` that the region verifier, shown the hue ``view`` they were seen in
    (placed at ``origin``), believes hold text (HUE_VERIFY_THRESHOLD). Reading cannot check them:
    two lines on one label are often one box in a hue view. They are scored as lines the detector
    was sure of (VERIFY_SURE_SCORE): shown the luma, where they are nothing, the verifier would
    doubt them, and ``holds_text`` would clear an image whose only text they are."""
    pairs = [(line, region) for line in not_yet_found(lines, found, shape)
             if (region := to_region(line, shape)) is not None]
    if not pairs:
        return []
    xa, ya = origin
    canvas = np.full(shape, 128, np.uint8)  # the view where it was taken, neutral grey elsewhere
    canvas[ya:ya + view.shape[0], xa:xa + view.shape[1]] = view
    believed = text_probabilities(finder.verifier, canvas, [region for _, region in pairs]) >= HUE_VERIFY_THRESHOLD
    return [(*line[:4], max(line[4], VERIFY_SURE_SCORE))
            for (line, _), keep in zip(pairs, believed, strict=True) if keep]


def _colour_boxes(finder: TextFinder, views: list[np.ndarray], scale: float) -> list:
    """Boxes of text no taller than COLOUR_MAX_TEXT found at the working scale in ``views``."""
    return [box for prob in prob_maps(finder.detector, [at_scale(v, scale) for v in views])
            for box in boxes_from_prob(prob, scale, finder.postprocess)
            if min(box[2] - box[0], box[3] - box[1]) * scale <= COLOUR_MAX_TEXT]
