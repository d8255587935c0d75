"""Telea fast-marching inpainting (OpenCV), the default backend.

Cheap, deterministic and good on the smooth or dark backgrounds text usually sits on.
cv2.inpaint takes 8-bit (grey or 3-channel), 16-bit unsigned or float32 single-channel input:
grey frames keep their full depth (signed values shifted into uint16, wider ones as float32),
colour frames deeper than 8 bits are done channel by channel.
"""

from __future__ import annotations

import cv2
import numpy as np

from gateway.pixels.inpaint.base import RestoreContext, cast_like, paste


class TeleaInpainter:
    name = "telea"
    version = f"opencv-telea-{cv2.__version__}"

    def __init__(self, radius: int = 5):
        self.radius = radius

    def _one(self, plane: np.ndarray, mask8: np.ndarray) -> np.ndarray:
        if plane.dtype == np.uint8 or plane.dtype == np.uint16:
            return cv2.inpaint(plane, mask8, self.radius, cv2.INPAINT_TELEA)
        lo = int(plane.min())
        if plane.dtype.kind in "iu" and int(plane.max()) - lo <= 0xFFFF:
            shifted = (plane.astype(np.int64) - lo).astype(np.uint16)
            return cv2.inpaint(shifted, mask8, self.radius, cv2.INPAINT_TELEA).astype(np.int64) + lo
        return cv2.inpaint(plane.astype(np.float32), mask8, self.radius, cv2.INPAINT_TELEA)

    def restore(self, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> np.ndarray:
        if not mask.any():
            return frame.copy()
        mask8 = mask.astype(np.uint8)
        if frame.ndim == 3 and frame.dtype == np.uint8:
            restored = cv2.inpaint(np.ascontiguousarray(frame), mask8, self.radius, cv2.INPAINT_TELEA)
        elif frame.ndim == 3:
            restored = np.stack([self._one(np.ascontiguousarray(frame[..., c]), mask8) for c in range(frame.shape[2])], axis=2)
        else:
            restored = self._one(np.ascontiguousarray(frame), mask8)
        return paste(frame, cast_like(np.asarray(restored), frame, ctx), mask)
