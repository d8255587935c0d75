"""Rendering works in place on its own float32 copy, for speed, and that changes nothing.

``display_image`` is what the detector was trained on and what the gateway shows it, so its
result must stay the same byte for byte; and the frame it is given (the decoder's array, which the
stage goes on to restore and write) must come back untouched.
"""

import numpy as np
import pytest
from pydicom.dataset import Dataset

from models.render import display_image


def _written_out(pixels: np.ndarray, slope, intercept, center, width, monochrome1: bool) -> np.ndarray:
    """The rendering as plain expressions, one new array per step: the reference."""
    data = pixels.astype(np.float32)
    if slope is not None or intercept is not None:
        data = data * (float(slope) if slope else 1.0) + (float(intercept) if intercept else 0.0)
    lo, hi = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    out = np.clip((data.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    return 255 - out if monochrome1 else out


@pytest.mark.parametrize("dtype,low,high", [(np.int16, -1024, 3071), (np.uint16, 0, 4095), (np.float32, -900, 2500)])
@pytest.mark.parametrize("slope,intercept", [(None, None), ("1", "-1024"), ("0.37", "12.5")])
@pytest.mark.parametrize("monochrome1", [False, True])
def test_the_same_bytes_as_the_written_out_rendering(dtype, low, high, slope, intercept, monochrome1):
    rng = np.random.default_rng(7)
    pixels = rng.uniform(low, high, (97, 131)).astype(dtype)
    kept = pixels.copy()
    data = pixels.astype(np.float32) * (float(slope) if slope else 1.0) + (float(intercept) if intercept else 0.0)
    center, width = float(np.median(data)), float(data.max() - data.min())  # a window that fits
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = str(center), str(width)

    out = display_image(pixels, ds)

    assert np.array_equal(out, _written_out(pixels, slope, intercept, center, width, monochrome1))
    assert np.array_equal(pixels, kept)  # the caller's frame is untouched


def test_a_wide_colour_frame_is_scaled_and_left_untouched():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 4096, (40, 50, 3)).astype(np.uint16)
    kept = rgb.copy()
    out = display_image(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape and out.max() > 200
    assert np.array_equal(rgb, kept)
