"""Turning PixelData into arrays, or saying clearly why it cannot be done.

Every transfer syntax the gateway accepts must decode: pydicom's own decoders and the pylibjpeg
plugins (openjpeg, libjpeg, rle) first, python-gdcm as the fallback. Whatever cannot be decoded
cannot be checked for burned-in text, so the caller quarantines it — the reason names the
transfer syntax and the decoders tried, never a value from the dataset.

Colour is normalised here so that later steps only know two layouts:
- ``mono``: (frames, rows, columns) in the stored value domain (signed or unsigned ints);
- ``rgb``: (frames, rows, columns, 3); YBR_* are converted to RGB by the decoders, PALETTE COLOR
  is expanded through its lookup table to 8-bit RGB (indices cannot be inpainted: neighbouring
  indices need not be neighbouring colours).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydicom import Dataset
from pydicom.pixels import pixel_array
from pydicom.pixels.processing import apply_color_lut
from pydicom.uid import UID, MPEGTransferSyntaxes

from gateway.logs import describe_error
from gateway.pipeline.stage import Quarantine

log = logging.getLogger(__name__)

MONO = ("MONOCHROME1", "MONOCHROME2")
RGB_LIKE = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "YBR_PARTIAL_422")
PALETTE = "PALETTE COLOR"

# Decoders in the order they are tried; "" lets pydicom choose among its installed plugins.
DECODERS = ("", "gdcm")


@dataclass
class Decoded:
    """The frames of one instance, plus what is needed to write them back."""

    frames: np.ndarray  # (F, R, C) or (F, R, C, 3)
    photometric: str  # as received
    layout: str  # "mono" or "rgb"
    bits_stored: int
    signed: bool
    from_palette: bool = False

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def value_range(self) -> tuple[int, int]:
        """The representable range of a stored value, for mapping to and from 8 bits."""
        if self.frames.dtype.kind == "f":
            return float(self.frames.min()), float(self.frames.max())
        bits = self.bits_stored if not self.from_palette else 8
        if self.signed:
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1


#: The reason a video is quarantined: no decoder here reads MPEG-2, MPEG-4 or HEVC frames, so
#: text burned into them cannot be looked for. Accepted (the sender gets success and the video
#: is kept), never forwarded unchecked.
VIDEO_REASON = "video (MPEG-2, MPEG-4 or HEVC) cannot be checked for burned-in text"


def is_video(ds: Dataset) -> bool:
    """True when the instance's pixel data is an MPEG-2, MPEG-4 AVC or HEVC stream."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return uid is not None and str(uid) in MPEGTransferSyntaxes


def has_pixel_data(ds: Dataset) -> bool:
    """True when the instance carries an image the pixel stage must look at."""
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _transfer_syntax_name(ds: Dataset) -> str:
    """The transfer syntax's name from pydicom's dictionary of the standard's syntaxes; any other
    value is the sender's own text and is not repeated (messages never quote a dataset)."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid is None or not UID(str(uid)).is_transfer_syntax:
        return "an unknown transfer syntax"
    return f"{uid.name} ({uid})"


#: Photometric interpretations of the standard the stage does not handle, named in reasons.
UNSUPPORTED_TERMS = ("YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "XYB", "CMYK", "ARGB", "HSV", "YBR_PARTIAL_422")


def _term(value: str, terms: tuple[str, ...]) -> str:
    """``value`` if it is one of ``terms`` (fixed vocabulary), else a word for what it is."""
    if not value:
        return "missing"
    return value if value in terms else "not a defined term"


def decode(ds: Dataset) -> Decoded:
    """Decode all frames of ``ds``; raises :class:`Quarantine` when no decoder can."""
    if "PixelData" not in ds:
        raise Quarantine("float pixel data is not supported by the pixel stage")
    if is_video(ds):
        raise Quarantine(VIDEO_REASON)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in MONO + RGB_LIKE + (PALETTE,):
        # Only the standard's terms are named; anything else is the sender's text.
        raise Quarantine(f"unsupported photometric interpretation ({_term(photometric, UNSUPPORTED_TERMS)})")
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(keyword):
            raise Quarantine(f"pixel data cannot be decoded: {keyword} missing or zero")

    errors: list[str] = []
    arr: np.ndarray | None = None
    for plugin in DECODERS:
        try:
            arr = pixel_array(ds, decoding_plugin=plugin, as_rgb=True)
            break
        except Exception as exc:  # any decoder failure means "try the next one"
            # Exception text may quote dataset values in theory; log the type only.
            errors.append(f"{plugin or 'default'}: {type(exc).__name__}")
            log.debug("decoder %r failed: %s", plugin or "default", describe_error(exc))
    if arr is None:
        raise Quarantine(
            f"pixel data cannot be decoded ({_transfer_syntax_name(ds)}; tried {', '.join(errors)})"
        )

    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    from_palette = False
    if photometric == PALETTE:
        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:  # noqa: BLE001 - a broken LUT of any kind means undecodable
            raise Quarantine(f"palette colour lookup table cannot be applied ({type(exc).__name__})") from None
        if arr.dtype != np.uint8:
            # A changed palette image leaves as 8-bit RGB (what the US and SC IODs allow for
            # RGB); 16-bit LUT entries are scaled once, here, so restoration sees final values.
            arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        from_palette = True
        samples = 3
    expected = (rows, cols) if samples == 1 else (rows, cols, 3)
    if n_frames == 1 and arr.shape == expected:
        arr = arr[np.newaxis]
    if arr.shape != (n_frames, *expected):
        raise Quarantine("decoded pixel data does not match the image the header describes")
    layout = "mono" if samples == 1 else "rgb"
    return Decoded(
        frames=arr,
        photometric=photometric,
        layout=layout,
        bits_stored=int(ds.get("BitsStored", ds.BitsAllocated)),
        signed=bool(ds.get("PixelRepresentation", 0)) and not from_palette,
        from_palette=from_palette,
    )
