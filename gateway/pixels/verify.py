"""Checking the restored image the way an attacker would: look for text again.

After restoration the detector runs on the whole restored frame and on every restored part
(a crop around it, where small leftovers stand out). Anything found in a restored part, or any
text anywhere that the policy did not decide to keep, is a failure. The stage then solid-fills
the failing parts (the fill backend cannot leave text) and checks once more; an instance that
still fails is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gateway.pixels.detect import TextDetector
from gateway.pixels.mask import components
from gateway.pixels.regions import Box

# Context added around each restored part for the crop check.
CROP_CONTEXT = 16


@dataclass
class FrameCheck:
    frame: int
    failures: list[Box] = field(default_factory=list)


def check_frame(
    detector: TextDetector,
    display: np.ndarray,
    frame: int,
    mask: np.ndarray,
    kept: Sequence[Box],
    still_safe: Callable[[int, list[Box]], list[bool]] | None = None,
) -> FrameCheck:
    """Detect on the whole restored display and on each restored part.

    ``kept`` are the boxes the policy chose to keep (never failures unless in a restored part);
    ``still_safe`` re-reads and re-classifies detections that fall on kept text (keep_safe).
    """
    rows, cols = mask.shape
    parts = [p.pad(CROP_CONTEXT, rows, cols) for p in components(mask)]
    found = detector.detect_image(display, frame, source="verify")
    found += detector.detect_crops(display, parts, frame, source="verify")
    failures = []
    on_kept = []
    for b in found:
        if mask[b.y0:b.y1, b.x0:b.x1].any():
            failures.append(b)
        elif any(b.intersects(k) and k.applies_to(frame) for k in kept):
            on_kept.append(b)
        else:
            failures.append(b)
    if on_kept and still_safe is not None:
        for b, ok in zip(on_kept, still_safe(frame, on_kept), strict=True):
            if not ok:
                failures.append(b)
    return FrameCheck(frame, failures)
