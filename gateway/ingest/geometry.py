"""The size of the image a header declares, before anything is decoded.

A decoder allocates what the header declares, not what the compressed stream holds: a 1 KB
RLE file saying 20000 x 20000 pixels asks for gigabytes. The receiver refuses such instances
at ingest, and the pixel stage can ask the same question before it decodes. Pure functions of
the dataset, so both sides agree on the arithmetic.
"""

from __future__ import annotations

from pydicom import Dataset

#: Photometric interpretation whose native stream stores two samples per pixel (the chroma
#: pair shared by two pixels), although SamplesPerPixel says three.
_SUBSAMPLED = "YBR_FULL_422"
_ABSENT = object()


def _integer(ds: Dataset, keyword: str):
    """An attribute as an int; ``_ABSENT`` if missing or empty; None if it is no number
    (pydicom converts a received value on first access, and may raise then)."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return _ABSENT
        return int(value)
    except Exception:  # pydicom's conversion errors vary with the VR and its settings
        return None


def _photometric(ds: Dataset) -> str | None:
    try:
        return ds.get("PhotometricInterpretation")
    except Exception:  # as in _integer: a received value pydicom cannot convert
        return None


def _positive(ds: Dataset, keyword: str) -> int | None:
    value = _integer(ds, keyword)
    return value if isinstance(value, int) and value > 0 else None


def declared_frames(ds: Dataset) -> int | None:
    """NumberOfFrames, 1 when absent (single-frame); None when present but unusable."""
    frames = _integer(ds, "NumberOfFrames")
    if frames is _ABSENT:
        return 1
    if frames is None or frames < 0:
        return None
    return max(frames, 1)  # zero is written by some modalities for "one"


def _image(ds: Dataset) -> tuple[int, int, int, int, int] | None:
    """Rows, columns, frames, samples per pixel, bits allocated; None if any is unusable."""
    values = (_positive(ds, "Rows"), _positive(ds, "Columns"), declared_frames(ds),
              _positive(ds, "SamplesPerPixel"), _positive(ds, "BitsAllocated"))
    return None if None in values else values


def declared_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes a decoder allocates for the whole image: Rows x Columns x frames x samples x
    whole bytes per sample (1-bit and 12-bit data decode to 1 and 2 bytes a sample).

    None when the header does not describe an image (a required attribute missing, not a
    number, or not positive): nothing can be decoded from it.
    """
    image = _image(ds)
    if image is None:
        return None
    rows, columns, frames, samples, bits = image
    return rows * columns * frames * samples * ((bits + 7) // 8)


def native_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes an uncompressed PixelData value must hold for the image the header describes
    (bits packed, YBR_FULL_422 chroma shared); None when the header does not describe one."""
    image = _image(ds)
    if image is None:
        return None
    rows, columns, frames, samples, bits = image
    if _photometric(ds) == _SUBSAMPLED:
        samples = 2
    return (rows * columns * frames * samples * bits + 7) // 8
