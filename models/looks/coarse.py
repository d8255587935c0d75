"""The coarse look: the image again at half the working scale, for text too large to see whole.

Text taller than the network's receptive field (50 px words, lead markers on a 2000 px
radiograph) fits it at half the scale. Smaller text is the first pass's, and seen coarsely it is
a blur; very large shapes seen coarsely are image structure, so both ends are cut off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.tiling import prob_map
from models.postprocess import boxes_from_prob

if TYPE_CHECKING:
    from models.inference import TextFinder

#: Boxes whose short side is under this many working pixels are the first pass's to find.
COARSE_MIN_TEXT = 24
#: Boxes whose short side is over this many original pixels are image structure (a colour-Doppler
#: box): 60 px glyphs, the largest burned-in text expected, plus the box's margins.
COARSE_MAX_TEXT = 96
#: Nor boxes whose short side is over this share of the image's short side: a line as tall as half
#: the image is not an annotation (on a 64² nuclear-medicine frame it would be the whole heart).
COARSE_MAX_SHARE = 0.5
#: No coarse look when the half-scale image would be shorter than this.
COARSE_MIN_SIDE = 64


def look(finder: TextFinder, gray: np.ndarray, scale: float) -> list:
    """Large-text boxes found at half ``scale``."""
    coarse = scale / 2
    if min(gray.shape) * coarse < COARSE_MIN_SIDE:
        return []
    small = cv2.resize(gray, None, fx=coarse, fy=coarse, interpolation=cv2.INTER_AREA)
    largest = min(COARSE_MAX_TEXT, COARSE_MAX_SHARE * min(gray.shape))
    return [b for b in boxes_from_prob(prob_map(finder.detector, small), coarse, finder.postprocess)
            if COARSE_MIN_TEXT <= min(b[2] - b[0], b[3] - b[1]) * scale
            and min(b[2] - b[0], b[3] - b[1]) <= largest]
