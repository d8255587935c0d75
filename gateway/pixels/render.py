"""The display rendering the detector looks at.

Burned-in text is only text relative to a display mapping, and the detector was trained on
``models.render.display_image`` (modality LUT, then a VOI window when it fits the data or
percentiles when it does not, MONOCHROME1 inverted). Using the very same function here keeps
what the gateway checks identical to what the detector learnt. This module only adds scaling to
the detector's input size, which bounds the cost of the no-text path on large images.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydicom import Dataset

from models.render import display_image, to_gray

__all__ = ["display_image", "fit", "render_frame", "to_gray"]


class _RenderView:
    """The attributes display_image reads, without dragging the whole dataset along.

    Palette images have already been expanded to RGB, so their photometric is reported as RGB.
    """

    def __init__(self, ds: Dataset | None, photometric: str | None = None):
        get = ds.get if ds is not None else (lambda _k, d=None: d)
        self.PhotometricInterpretation = photometric or get("PhotometricInterpretation", "MONOCHROME2")
        self.RescaleSlope = get("RescaleSlope", None)
        self.RescaleIntercept = get("RescaleIntercept", None)
        self.WindowCenter = get("WindowCenter", None)
        self.WindowWidth = get("WindowWidth", None)


def render_frame(frame: np.ndarray, ds: Dataset | None, photometric: str | None = None) -> np.ndarray:
    """One stored frame (R×C or R×C×3) to the uint8 image a reader would see."""
    return display_image(frame, _RenderView(ds, photometric))


def fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longest side is at most ``max_side``; returns it and the scale.

    The scale maps detector coordinates back: ``stored = detected / scale``.
    """
    side = max(image.shape[:2])
    if side <= max_side:
        return image, 1.0
    scale = max_side / side
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale
