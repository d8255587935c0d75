"""Solid fill: each masked part becomes one background value.

The backend of last resort (verification falls back to it): it cannot leave or invent text.
The value is the median of a thin ring just outside the part, so the patch matches its
surroundings (black ultrasound margin, air in CT) rather than being an arbitrary grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from gateway.pixels.inpaint.base import RestoreContext, paste
from gateway.pixels.mask import mask_parts


class FillInpainter:
    name = "fill"
    version = "fill-1"

    def __init__(self, ring: int = 3):
        self.ring = ring

    def restore(self, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> np.ndarray:
        out = frame.copy()
        rows, cols = mask.shape
        labels_n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        boxes = mask_parts(mask)
        kernel = np.ones((2 * self.ring + 1, 2 * self.ring + 1), np.uint8)
        for label, box in zip(range(1, labels_n), boxes, strict=False):
            window = box.pad(self.ring + 1, rows, cols)
            part = labels[window.y0:window.y1, window.x0:window.x1] == label
            ring = cv2.dilate(part.astype(np.uint8), kernel).astype(bool) & ~mask[window.y0:window.y1, window.x0:window.x1]
            pixels = frame[window.y0:window.y1, window.x0:window.x1][ring]
            if pixels.size == 0:  # the whole image is masked
                pixels = frame[~mask] if (~mask).any() else frame.reshape(-1, *frame.shape[2:])
            value = np.median(pixels.reshape(-1, *frame.shape[2:]), axis=0) if pixels.size else 0
            region = out[window.y0:window.y1, window.x0:window.x1]
            region[part] = np.asarray(np.rint(value)).astype(frame.dtype)
        return paste(frame, out, mask)
