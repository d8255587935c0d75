"""Whether the regions found show that an image holds text: the region verifier's say.

The region verifier (`models.verifier`; on unless ``load(verifier=False)`` or ``pixels.verifier:
false``) judges each region found, with its surroundings. When the detector was sure of none of
an image's regions (every score under VERIFY_SURE_SCORE) and the verifier gives every one a
probability of text under its bar, the image has no regions; otherwise it keeps all of them. So
text-free images pass byte for byte, and the redaction of images with text stays the detector's:
judged region by region, the verifier lost 0.3 % of PHI lines on fresh synthetic images, every
one in an image with text it kept; judged by image, it lost none, up to a bar five times
VERIFY_THRESHOLD (see the model card). ``single_scale`` does without it: the check after
restoration stays strict. The gateway asks it of a whole instance, its tiles, crops and frames
together.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from models.postprocess import Postprocess
from models.reading import READ_BATCH, prepare_region
from models.regions import TextRegion, line_box
from models.render import as_display, to_gray

#: The verifier's weights in the weights directory.
VERIFIER = "verifier"
#: Regions the detector was not sure of, all under this probability of text, leave the image none.
VERIFY_THRESHOLD = 0.1
#: A region the detector scores at least this shows text, whatever the verifier says: its false
#: regions on step wedges, label maps, test cards and specular highlights score 0.70-0.82.
VERIFY_SURE_SCORE = 0.85
#: With the verifier the first pass also returns components scoring from VERIFIED_MIN_SCORE up to
#: the bar (FAINT_SCORE): such a component is a faint line (small MR text, a word on posterised
#: lung) as often as a texture. They are added after the looks, so that every region found without
#: them is still found.
FAINT_SCORE = Postprocess().min_score
VERIFIED_MIN_SCORE = 0.65
#: A faint region shows that an image holds text only when the verifier is fairly sure of it: at
#: VERIFY_THRESHOLD, textures in five of the 37 public text-free files would pass for text again.
VERIFY_FAINT_THRESHOLD = 0.5


def holds_text(verifier: Callable[[np.ndarray], np.ndarray] | None, image: np.ndarray,
               regions: list[TextRegion]) -> bool:
    """Whether ``regions`` found in ``image`` show that it holds text: the detector was sure of
    one of them, or the verifier believes one. Without a verifier, any does."""
    if not regions:
        return False
    if verifier is None or any(r.score >= VERIFY_SURE_SCORE for r in regions):
        return True
    bars = [VERIFY_THRESHOLD if r.score >= FAINT_SCORE else VERIFY_FAINT_THRESHOLD for r in regions]
    return bool((text_probabilities(verifier, image, regions) >= np.array(bars)).any())


def text_probabilities(verifier: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                       regions: list[TextRegion]) -> np.ndarray:
    """The verifier's probability that each region of ``image`` holds text."""
    gray = to_gray(as_display(image))
    x = np.stack([prepare_region(gray, line_box(r)) for r in regions])[:, None]
    logits = np.concatenate([verifier(x[k:k + READ_BATCH]) for k in range(0, len(x), READ_BATCH)])[:, 0]
    return 1.0 / (1.0 + np.exp(-logits))
