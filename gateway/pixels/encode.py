"""Writing restored frames back into the dataset, losslessly and consistently.

Only instances whose pixels changed come here; the others keep their bytes and transfer syntax.
A changed instance is written uncompressed or re-encoded losslessly (RLE, JPEG-LS, JPEG 2000
lossless) per ``pixels.output_syntax``. Re-encoding lossy input losslessly adds no loss, and
its lossy history (LossyImageCompression and its ratio/method) is kept, or recorded when the
received transfer syntax itself was lossy and the header did not say so.

Colour always leaves as RGB with PlanarConfiguration 0: decoders hand YBR_* over as RGB and
palette images were expanded, so writing anything else would describe the pixels wrongly.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from gateway.pixels.decode import Decoded

OUTPUT_SYNTAXES = {"rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}

# Lossy transfer syntaxes and the LossyImageCompressionMethod term (PS3.3 C.7.6.1.1.5.1).
LOSSY_METHODS = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
    "1.2.840.10008.1.2.4.100": "ISO_13818_2",
    "1.2.840.10008.1.2.4.102": "ISO_14496_10",
}

PALETTE_KEYWORDS = (
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "PaletteColorLookupTableUID",
    "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData",
)

_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _to_little_endian(ds: Dataset) -> None:
    """Byte-swap the binary values pydicom leaves in their big-endian order (its writer won't)."""
    for elem in ds.iterall():
        width = _SWAP_WIDTH.get(str(elem.VR))
        if width and elem.tag != 0x7FE00010 and isinstance(elem.value, bytes | bytearray) and len(elem.value) % width == 0:
            elem.value = np.frombuffer(elem.value, f">u{width}").astype(f"<u{width}").tobytes()
    ds.set_original_encoding(False, True)


def _record_lossy_history(ds: Dataset, received: str) -> None:
    method = LOSSY_METHODS.get(received)
    if method is None:
        return
    if str(ds.get("LossyImageCompression", "")) != "01":
        ds.LossyImageCompression = "01"
    if "LossyImageCompressionMethod" not in ds:
        ds.LossyImageCompressionMethod = method


def write_frames(ds: Dataset, decoded: Decoded, frames: np.ndarray, output_syntax: str) -> UID:
    """Replace ds's pixel data with ``frames``; returns the transfer syntax written."""
    meta = ds.file_meta
    received = str(getattr(meta, "TransferSyntaxUID", ExplicitVRLittleEndian))
    big_endian = received == "1.2.840.10008.1.2.2"
    _record_lossy_history(ds, received)

    arr = frames[0] if frames.shape[0] == 1 else frames
    if decoded.layout == "rgb":
        ds.PhotometricInterpretation = "RGB"
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
        if decoded.from_palette:
            for keyword in PALETTE_KEYWORDS:
                if keyword in ds:
                    del ds[keyword]
            arr = arr.astype(np.uint8)  # decode() expanded the palette to 8-bit RGB
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<")))

    if big_endian:
        _to_little_endian(ds)
    target = OUTPUT_SYNTAXES.get(output_syntax)
    if target is not None:
        # compress() checks the array against Rows/Columns/Samples/Bits and sets the syntax.
        ds.compress(target, arr, generate_instance_uid=False)
    else:
        syntax = ImplicitVRLittleEndian if received == ImplicitVRLittleEndian else ExplicitVRLittleEndian
        ds.PixelData = arr.tobytes()
        ds["PixelData"].VR = "OB" if int(ds.BitsAllocated) <= 8 else "OW"
        ds["PixelData"].is_undefined_length = False
        meta.TransferSyntaxUID = syntax
        ds.set_original_encoding(syntax == ImplicitVRLittleEndian, True)
    if "NumberOfFrames" in ds or frames.shape[0] > 1:
        ds.NumberOfFrames = frames.shape[0]
    return UID(str(meta.TransferSyntaxUID))


def mark_clean(ds: Dataset) -> None:
    """Header attributes that must agree with cleaned pixels."""
    ds.BurnedInAnnotation = "NO"
    # The icon is a downscaled copy of the image, text included: it goes.
    if "IconImageSequence" in ds:
        del ds.IconImageSequence
