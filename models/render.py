"""Display rendering: turn stored DICOM pixel values into the 8-bit image a person would see.

Burned-in text is only "visible" relative to a display mapping, so the detector always looks at
an 8-bit rendering.  The stored values can be 8-16 bit, signed, rescaled, MONOCHROME1, or (as in
some de-identification corpora) already-rendered 0-255 values kept in 16 bits with the original
window tags left behind.  A window that does not fit the data would render the image black, so a
window is used only when it plausibly matches the pixel values; otherwise percentiles are used.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

#: Percentiles used when no usable VOI window exists.
PERCENTILES = (0.5, 99.8)
#: Grey levels a trusted window must spread the image over.
MIN_SPREAD = 96


def _first(value: Any) -> float | None:
    """Window tags may be multi-valued; the first value is the default presentation."""
    if value is None:
        return None
    try:
        if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _window_fits(data: np.ndarray, lo: float, hi: float) -> bool:
    """Trust a window unless it collapses the image (e.g. stale tags over already-rendered 0-255 data).

    The window's rendering must spread the central 98% of pixels over at least MIN_SPREAD grey levels.
    """
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return False
    sample = data[:: max(1, data.shape[0] // 256), :: max(1, data.shape[1] // 256)]
    p_lo, p_hi = np.percentile(sample, (1.0, 99.0))
    rendered = np.clip((np.array([p_lo, p_hi]) - lo) * (255.0 / (hi - lo)), 0, 255)
    return float(rendered[1] - rendered[0]) >= MIN_SPREAD


def _linear(data: np.ndarray, lo: float, hi: float, scratch: bool = False) -> np.ndarray:
    """``data`` mapped from [lo, hi] to 0-255: the float32 operations of ``(data - lo) * k`` then
    clipping, done in place on one float32 copy of ``data`` (or, with ``scratch``, on ``data``
    itself, a float32 array the caller no longer needs) rather than on a fresh array for each:
    every array of a frame's size is new memory to fault in, which costs as much as the arithmetic."""
    scaled = data if scratch and data.dtype == np.float32 else data.astype(np.float32)
    scaled -= lo
    scaled *= 255.0 / max(hi - lo, 1e-6)
    return np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)


def percentile_window(data: np.ndarray) -> tuple[float, float]:
    sample = data[:: max(1, data.shape[0] // 512), :: max(1, data.shape[1] // 512)]
    lo, hi = np.percentile(sample, PERCENTILES)
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def display_image(pixels: np.ndarray, ds: Any | None = None) -> np.ndarray:
    """Render one frame (HxW or HxWx3) to uint8: modality LUT, VOI window or percentiles, MONOCHROME1.

    Colour frames (HxWx3/4) are returned as 8-bit RGB (scaled if stored wider than 8 bits).
    A uint8 greyscale frame without a dataset is taken to be a display image already.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb = pixels[..., :3]
        if rgb.dtype == np.uint8:
            return np.ascontiguousarray(rgb)
        lo, hi = percentile_window(rgb.reshape(rgb.shape[0], -1))
        return _linear(rgb, min(lo, 0.0), hi)
    if pixels.ndim != 2:
        raise ValueError(f"expected HxW or HxWx3 pixels, got shape {pixels.shape}")

    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2") if ds is not None else "MONOCHROME2"
    if ds is None and pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)

    data = pixels.astype(np.float32)
    if ds is not None:
        slope = _first(getattr(ds, "RescaleSlope", None))
        intercept = _first(getattr(ds, "RescaleIntercept", None))
        if slope is not None or intercept is not None:
            data *= slope if slope else 1.0  # in place on the float32 copy, as in _linear
            data += intercept or 0.0

    window = None
    if ds is not None:
        center = _first(getattr(ds, "WindowCenter", None))
        width = _first(getattr(ds, "WindowWidth", None))
        if center is not None and width is not None and width > 1:
            lo, hi = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
            if _window_fits(data, lo, hi):
                window = (lo, hi)
    if window is None:
        if pixels.dtype == np.uint8 and ds is not None and float(data.max()) - float(data.min()) > 64:
            window = (float(data.min()), float(data.max()))
        else:
            window = percentile_window(data)
    out = _linear(data, *window, scratch=True)  # data is this function's own float32 copy
    if photometric.upper() == "MONOCHROME1":
        np.subtract(255, out, out=out)
    return out


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB display image (a greyscale image passes through)."""
    if image.ndim == 2:
        return image
    rgb = image[..., :3].astype(np.float32)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2] + 0.5).astype(np.uint8)


#: Contrast-limited adaptive histogram equalisation (CLAHE) of the detector's view, and the share of
#: the equalised luma in it: chosen on the synthetic validation set (seed 500, training fonts) among
#: clip limits 2-4, grids of 4 and 8, and the equalised luma as a look of its own, as the whole view,
#: or half of it (half: nearly all of the recall of a look of its own, at no extra network pass).
CLAHE_CLIP = 2.0
CLAHE_TILES = 8
EQUALISED_SHARE = 0.5
#: Tiles are at least this many pixels a side, so that a small image, or a crop the gateway cuts
#: around a changed area of a cine frame, is not equalised into noise.
CLAHE_MIN_TILE = 32


def local_contrast(gray: np.ndarray) -> np.ndarray:
    """Luma with its contrast stretched tile by tile (CLAHE)."""
    h, w = gray.shape
    grid = (int(np.clip(w // CLAHE_MIN_TILE, 1, CLAHE_TILES)), int(np.clip(h // CLAHE_MIN_TILE, 1, CLAHE_TILES)))
    return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=grid).apply(gray)


def detector_view(image: np.ndarray) -> np.ndarray:
    """The greyscale image the detector looks at: luma, half of it equalised locally.

    A display rendering sets one window for the whole image; text burned in over a bright or dark
    part of it, or drawn a few grey levels off its background, is then faint. Equalised locally it
    is text the detector knows, but so is every texture; the plain half keeps those as they were.
    """
    gray = to_gray(image)
    return cv2.addWeighted(gray, 1.0 - EQUALISED_SHARE, local_contrast(gray), EQUALISED_SHARE, 0.0)


#: An RGB image has colour worth a look when at least CHROMA_PIXELS pixels differ between their
#: strongest and weakest channel by more than CHROMA_MIN grey levels (a grey picture stored as RGB,
#: JPEG noise included, does not).
CHROMA_MIN = 48
CHROMA_PIXELS = 20


def chroma(image: np.ndarray) -> np.ndarray | None:
    """How colourful each pixel of an RGB display image is (strongest minus weakest channel), or
    None for a greyscale image or an RGB one without colour.

    Luma hides text that differs from its background in hue but hardly in brightness: blue on mid
    grey, green over a pattern of black and white bars. In the chroma such text is plain bright text
    on a dark ground, which the detector knows.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        return None
    r, g, b = cv2.split(np.ascontiguousarray(image[..., :3]))  # numpy's reduction over 3 channels takes 80 times as long
    spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    return spread if np.count_nonzero(spread > CHROMA_MIN) >= CHROMA_PIXELS else None


#: How far the hue views stretch the opponent channels around neutral grey: a stroke 20 levels of a*
#: off its ground becomes 60, as plain as text the detector knows.
HUE_GAIN = 3.0
_HUE_STRETCH = np.clip(128.0 + HUE_GAIN * (np.arange(256) - 128.0), 0, 255).astype(np.uint8)


def hue_views(image: np.ndarray) -> list[np.ndarray]:
    """The red-green and the blue-yellow opponent channels (CIE Lab a* and b*) of an RGB display
    image, stretched around neutral grey (128).

    Text can differ from its ground in hue alone: green on an orange label is as bright as the label
    (luma hides it) and as colourful (so does the chroma), but it is the opposite on the red-green
    axis. Each opponent channel is a greyscale image in which such text is plain dark-on-light or
    light-on-dark text.
    """
    _, a, b = cv2.split(cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2LAB))
    return [cv2.LUT(a, _HUE_STRETCH), cv2.LUT(b, _HUE_STRETCH)]


def as_display(image: np.ndarray) -> np.ndarray:
    """What the models accept: uint8 as-is, any other dtype rendered by percentiles."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return display_image(image)


def dataset_frame(ds: Any, frame: int = 0) -> np.ndarray:
    """Display image of one frame of a dataset (palette colour expanded, YBR already RGB)."""
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[frame]
    photometric = str(getattr(ds, "PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:
            arr = (arr / 257).astype(np.uint8) if arr.max() > 255 else arr.astype(np.uint8)
        return np.ascontiguousarray(arr)
    return display_image(arr, ds)
