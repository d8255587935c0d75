"""Checking the restored image the way an attacker would: look for text again.

After restoration the detector runs on the whole restored frame and on every restored part
(a crop around it, where small leftovers stand out). Anything found in a restored part, or any
text the whole-frame check finds that the policy did not decide to keep, is a failure. What a
crop check finds outside the restored part is not: those pixels are the ones the whole-frame
check (and the detection before it) judged at the frame's own scale, and a small crop is seen
magnified, where textures next to a filled box start to look like text. The stage then solid-fills
the failing parts (the fill backend cannot leave text) and checks once more; an instance that
still fails is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from gateway.pixels.detect import TextDetector
from gateway.pixels.mask import mask_parts
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
    filled: np.ndarray | None = None,
) -> FrameCheck:
    """Detect on the whole restored display and on each restored part.

    ``mask`` marks every restored pixel, ``filled`` those of them that were solid-filled;
    ``kept`` are the boxes the policy chose to keep (never failures unless in a restored part);
    ``still_safe`` re-reads and re-classifies detections that fall on kept text (keep_safe).
    """
    rows, cols = mask.shape
    inpainted = mask if filled is None else mask & ~filled
    parts = [p.pad(CROP_CONTEXT, rows, cols) for p in mask_parts(mask)]
    found = detector.detect_image(display, frame, source="verify")
    found += [b for b in detector.detect_crops(display, parts, frame, source="verify")
              if mask[b.y0:b.y1, b.x0:b.x1].any()]
    failures = []
    on_kept = []
    for b in found:
        if inpainted[b.y0:b.y1, b.x0:b.x1].any():
            failures.append(b)
        elif mask[b.y0:b.y1, b.x0:b.x1].any():
            if _text_beside_fill(detector, display, b, mask, frame):
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


def _text_beside_fill(detector: TextDetector, display: np.ndarray, box: Box, restored: np.ndarray, frame: int) -> bool:
    """Whether text is found in ``box`` outside the restored pixels once the fill's edge is gone."""
    rows, cols = restored.shape
    crop = box.pad(CROP_CONTEXT, rows, cols)
    view = np.ascontiguousarray(display[crop.y0:crop.y1, crop.x0:crop.x1])
    holes = restored[crop.y0:crop.y1, crop.x0:crop.x1]
    if holes.all():
        return False
    smooth = cv2.inpaint(view, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    local = Box(box.x0 - crop.x0, box.y0 - crop.y0, box.x1 - crop.x0, box.y1 - crop.y0)
    for b in detector.detect_image(smooth, frame, source="verify"):
        if b.intersects(local) and (~holes[b.y0:b.y1, b.x0:b.x1]).any():
            return True
    return False
