"""The last word on each region: set aside what neither the verifier nor the recogniser takes for text.

The detector judges a pixel by a receptive field a few characters wide, so a depth ruler's ticks,
a caliper's cross, an ECG trace, a grid or a tiled image's seams can score as high as a line of
text, and the gateway erased them: the image lost its scale and its measurements. A region is
set aside when the recogniser, reading it, finds no line in it, and either
- the region verifier agrees (a probability of text under UNREAD_MAX_PROBABILITY) and the reading
  holds fewer than UNREAD_MIN_ALNUM letters or digits, or is under UNREAD_MIN_CONFIDENCE; or
- the reading is under UNREAD_MIN_CONFIDENCE and far too short for the region: under
  UNREAD_MIN_DENSITY characters per height of width (a line of text reads about two per height,
  even misread; a dotted grid line 30 heights long reads as one "S"). The verifier, which sees
  texture, believes such dotted lines; the recogniser does not.
And only a region one line tall (UNREAD_MAX_HEIGHT): read whole, a taller one shrinks a small line
inside it past reading.

The thresholds were chosen on the validation seed (500, training fonts; 150 images with scanner
graphics and 300 with hard negatives) as a point that lost no PHI line there: it set aside 142
of their 358 regions on no text. Looser points lost PHI lines the recogniser misread (a 16 px
line in an unusual font read at 0.12 confidence) or that lay small inside a tall region.

Every region one line tall is read once, in batches: a few milliseconds per image with text.
Off without a verifier or a recogniser (``single_scale``, the check after restoration, has its
own reading test: `gateway.pixels.verify`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.looks.verdict import text_probabilities

if TYPE_CHECKING:
    from models.inference import TextFinder
    from models.regions import TextRegion

#: A region the verifier gives at least this probability of text is kept without reading it,
UNREAD_MAX_PROBABILITY = 0.005
#: ... and so is one taller than this (pixels of the image it was found in),
UNREAD_MAX_HEIGHT = 32
#: ... otherwise it is kept when the recogniser reads at least this many letters or digits in it,
UNREAD_MIN_ALNUM = 2
#: ... at at least this mean confidence,
UNREAD_MIN_CONFIDENCE = 0.4
#: ... or, whatever the verifier says, as at least this many characters per height of its width.
UNREAD_MIN_DENSITY = 0.2


def keep_read(finder: TextFinder, display: np.ndarray, regions: list[TextRegion]) -> list[TextRegion]:
    """``regions`` less those that read as no line of text (see the module's docstring)."""
    if not regions or finder.verifier is None or finder.recognizer is None:
        return regions
    short = [i for i, r in enumerate(regions) if r.y1 - r.y0 <= UNREAD_MAX_HEIGHT]
    if not short:
        return regions
    lines = [regions[i] for i in short]
    probabilities = text_probabilities(finder.verifier, display, lines)
    unread = {i for i, r, p, reading in zip(short, lines, probabilities, finder.readings(display, lines), strict=True)
              if _unread(r, float(p), *reading)}
    return [r for i, r in enumerate(regions) if i not in unread]


def _unread(region: TextRegion, probability: float, text: str, confidence: float) -> bool:
    if confidence >= UNREAD_MIN_CONFIDENCE and sum(c.isalnum() for c in text) >= UNREAD_MIN_ALNUM:
        return False
    if probability < UNREAD_MAX_PROBABILITY:
        return True
    height, width = region.y1 - region.y0, region.x1 - region.x0
    density = len(text.replace(" ", "")) / max(1.0, width / max(1, height))
    return confidence < UNREAD_MIN_CONFIDENCE and density < UNREAD_MIN_DENSITY
