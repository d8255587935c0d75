"""The declared image size: what a decoder would allocate, from the header alone."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag

from gateway.ingest.geometry import (
    declared_frames,
    declared_pixel_bytes,
    native_pixel_bytes,
)


def _image(**values) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated = 512, 512, 1, 16
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("values, expected", [
    ({}, 512 * 512 * 2),
    ({"NumberOfFrames": 100}, 512 * 512 * 2 * 100),
    ({"SamplesPerPixel": 3, "BitsAllocated": 8}, 512 * 512 * 3),
    ({"BitsAllocated": 1}, 512 * 512),  # decoders unpack bits to a byte each
    ({"BitsAllocated": 12}, 512 * 512 * 2),
    ({"NumberOfFrames": 0}, 512 * 512 * 2),  # written for "one" by some modalities
    ({"Rows": 20000, "Columns": 20000, "SamplesPerPixel": 3}, 20000 * 20000 * 3 * 2),
    ({"Rows": 65535, "Columns": 65535, "NumberOfFrames": 1000}, 65535 * 65535 * 1000 * 2),
])
def test_declared_pixel_bytes(values, expected):
    assert declared_pixel_bytes(_image(**values)) == expected


def _received(ds: Dataset, tag: int, vr: str, value: bytes) -> Dataset:
    """As the receiver builds it: a raw element, converted by pydicom on first access."""
    ds[tag] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)
    return ds


@pytest.mark.parametrize("tag, vr, value", [
    (0x00280010, "US", b"\x00\x00"),  # zero rows
    (0x00280008, "IS", b"-3"),
    (0x00280008, "IS", b"many"),
    (0x00280100, "US", b"\x01"),  # a US value one byte long
])
def test_an_unusable_image_description_declares_nothing(tag, vr, value):
    assert declared_pixel_bytes(_received(_image(), tag, vr, value)) is None


def test_a_missing_attribute_declares_nothing():
    ds = _image()
    del ds.BitsAllocated
    assert declared_pixel_bytes(ds) is None
    assert native_pixel_bytes(ds) is None


def test_native_pixel_bytes_packs_bits_and_shares_chroma():
    assert native_pixel_bytes(_image(BitsAllocated=1)) == 512 * 512 // 8
    ybr = _image(SamplesPerPixel=3, BitsAllocated=8, PhotometricInterpretation="YBR_FULL_422")
    assert native_pixel_bytes(ybr) == 512 * 512 * 2
    assert declared_pixel_bytes(ybr) == 512 * 512 * 3  # a decoder returns full samples


def test_declared_frames():
    assert declared_frames(_image()) == 1
    assert declared_frames(_image(NumberOfFrames=40)) == 40


def test_a_value_pydicom_cannot_convert_is_no_answer_not_an_error():
    ds = _received(_image(), 0x00280004, "C\xc4", b"YBR_FULL_422")  # an unknown VR
    assert native_pixel_bytes(ds) == 512 * 512 * 2
    assert declared_pixel_bytes(_received(_image(), 0x00280010, "Q\xc4", b"\x10\x00")) is None
