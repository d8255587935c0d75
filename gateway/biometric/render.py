"""A stored radiograph as the generator expects to see it: a display rendering in [0, 1].

The generator was trained on 8-bit display images (bright bone, dark air). The stored values are
brought there by the modality rescale, the first VOI window of the header (PS3.3 C.11.2.1.2.1,
linear) or, without a usable one, the 0.5th and 99.5th percentiles, and inverted for MONOCHROME1.
Only the generator sees this rendering; the deformation is applied to the stored values.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.multival import MultiValue


def _first(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def render(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """(rows, columns) stored values -> float32 display image in [0, 1]."""
    values = frame.astype(np.float32)
    slope = _first(ds.get("RescaleSlope", 1)) or 1.0
    intercept = _first(ds.get("RescaleIntercept", 0)) or 0.0
    values = values * np.float32(slope) + np.float32(intercept)
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 1:
        out = (values - (center - 0.5)) / (width - 1) + 0.5
    else:
        lo, hi = np.percentile(values[:: max(1, values.shape[0] // 256), :: max(1, values.shape[1] // 256)],
                               (0.5, 99.5))
        out = (values - lo) / max(float(hi - lo), 1e-6)
    out = np.clip(out, 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32)
