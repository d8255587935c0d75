"""The display rendering the detector looks at.

Burned-in text is only text relative to a display mapping, and the detector was trained on
``models.render.display_image`` (modality LUT, then a VOI window when it fits the data or
percentiles when it does not, MONOCHROME1 inverted). Using the very same function here keeps
what the gateway checks identical to what the detector learnt. Frames are rendered at stored resolution: large ones are tiled by the detector step,
never shrunk, so small text stays as many pixels tall as it was burned in.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset

from models.render import display_image, to_gray

__all__ = ["display_image", "render_frame", "to_gray"]


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
