"""From boxes to the pixel mask restoration fills: union of boxes, dilated a little.

Dilation covers what a tight box misses: anti-aliased glyph edges, JPEG ringing around text,
a detector box a pixel short.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from gateway.pixels.regions import Box


def frame_mask(boxes: Iterable[Box], frame: int, rows: int, cols: int, dilate: int) -> np.ndarray:
    """The mask (rows×cols bool) of the boxes that apply to ``frame``."""
    mask = np.zeros((rows, cols), bool)
    for b in boxes:
        if b.applies_to(frame):
            p = b.pad(dilate, rows, cols)
            mask[p.y0:p.y1, p.x0:p.x1] = True
    return mask


def mask_parts(mask: np.ndarray) -> list[Box]:
    """Bounding boxes of the mask's connected parts (restoration and verification work per part)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [Box(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]
