"""The strict structure walk: every well-formed encoding passes, every cut or malformed one
fails with a fixed description, and a deflate bomb stops at its limit in constant memory."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from gateway.ingest.structure import (
    MAX_DEPTH,
    DoesNotInflate,
    FileSource,
    InflateLimit,
    InflatingSource,
    Malformed,
    Truncated,
    walk,
)

pytestmark = pytest.mark.filterwarnings("ignore")

ROWS = 0x00280010
ENCODINGS = [  # (file, implicit, little endian)
    ("CT_small.dcm", False, True),
    ("MR_small_implicit.dcm", True, True),
    ("MR_small_bigendian.dcm", False, False),
    ("emri_small_RLE.dcm", False, True),
    ("JPEG-LL.dcm", False, True),
    ("rtplan.dcm", True, True),  # nested sequences
]


def _body(name: str) -> bytes:
    """The data set after the file meta, as it travels in a C-STORE."""
    path = get_testdata_file(name)
    data = open(path, "rb").read()
    offset = dcmread(path, stop_before_pixels=True).file_meta["FileMetaInformationGroupLength"].value
    return data[132 + 12 + offset:]


def _walk(body: bytes, implicit=False, little=True, wanted=frozenset({ROWS})):
    return walk(FileSource(io.BytesIO(body), len(body)), implicit, little, wanted)


@pytest.mark.parametrize("name, implicit, little", ENCODINGS)
def test_well_formed_data_sets_pass_and_keep_only_wanted_values(name, implicit, little):
    found = _walk(_body(name), implicit, little)
    ds = dcmread(get_testdata_file(name))
    if "Rows" in ds:
        assert list(found.elements) == [ROWS]
        assert found.elements[ROWS].value is not None
    assert set(found.pixel_lengths) == ({0x7FE00010} if "PixelData" in ds else set())


class CountingFile(io.BytesIO):
    """A file that counts how often it is asked where it is (a system call on a real file)."""

    tells = 0

    def tell(self) -> int:
        self.tells += 1
        return super().tell()


def test_walking_a_file_asks_it_where_it_is_only_once():
    body = _body("rtplan.dcm")  # nested sequences: hundreds of elements
    f = CountingFile(body)
    f.seek(0)
    walk(FileSource(f, len(body)), True, True, frozenset())

    assert f.tells == 1 and f.tell() == len(body)


@pytest.mark.parametrize("name, implicit, little", ENCODINGS)
def test_a_data_set_cut_anywhere_inside_an_element_is_truncated(name, implicit, little):
    body = _body(name)
    for cut in (7, len(body) // 3, len(body) // 2, len(body) - 1):
        with pytest.raises((Truncated, Malformed)):
            _walk(body[:cut], implicit, little)


def test_an_encapsulated_pixel_data_is_walked_fragment_by_fragment():
    body = _body("emri_small_RLE.dcm")
    assert _walk(body).pixel_lengths == {0x7FE00010: None}
    with pytest.raises(Truncated):
        _walk(body[:-8])  # the sequence delimiter is missing


def _element(tag: int, vr: bytes, value: bytes, undefined=False) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    length = 0xFFFFFFFF if undefined else len(value)
    if vr in (b"SQ", b"OB", b"UN"):
        return struct.pack("<HH2sHL", group, elem, vr, 0, length) + value
    return struct.pack("<HH2sH", group, elem, vr, length) + value


ITEM = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def _nested(depth: int) -> bytes:
    inner = _element(0x00100010, b"PN", b"AB")
    for _ in range(depth):
        inner = _element(0x00081140, b"SQ", ITEM + inner + ITEM_END + SEQ_END, undefined=True)
    return inner


def test_nested_undefined_length_sequences_are_followed_to_their_delimiters():
    _walk(_nested(5) + _element(ROWS, b"US", b"\x10\x00"))
    with pytest.raises(Truncated):
        _walk(_nested(5)[:-8])


def test_misplaced_delimiters_and_runaway_nesting_are_malformed():
    with pytest.raises(Malformed, match="misplaced"):
        _walk(ITEM_END)
    with pytest.raises(Malformed, match="nested too deeply"):
        _walk(_nested(MAX_DEPTH + 1))


def test_an_undefined_length_un_element_is_an_implicit_vr_sequence():
    item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
    implicit_element = struct.pack("<HHL", 0x0010, 0x0010, 2) + b"AB"
    _walk(_element(0x00091010, b"UN", item + implicit_element + ITEM_END + SEQ_END, undefined=True))


def _deflated(body: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(body) + deflater.flush()


def test_a_deflated_data_set_is_inflated_as_it_is_walked():
    body = _body("CT_small.dcm")
    found = walk(InflatingSource(io.BytesIO(_deflated(body)), len(body)), False, True, frozenset({ROWS}))
    assert found.elements[ROWS].value == b"\x80\x00"
    with pytest.raises(InflateLimit):
        walk(InflatingSource(io.BytesIO(_deflated(body)), len(body) - 1), False, True, frozenset())
    with pytest.raises(DoesNotInflate):
        walk(InflatingSource(io.BytesIO(_deflated(body)[:-100]), 2**30), False, True, frozenset())
    with pytest.raises(DoesNotInflate):
        walk(InflatingSource(io.BytesIO(b"\xff" * 64), 2**30), False, True, frozenset())


def test_a_deflate_bomb_stops_at_the_limit_in_constant_memory():
    """256 MiB of zeros in an OB value, 256 KB deflated; the limit is 64 MiB."""
    document = struct.pack("<HH2sHL", 0x0042, 0x0011, b"OB", 0, 256 * 1024 * 1024)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = deflater.compress(document) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(bytes(1024 * 1024)) + deflater.flush(zlib.Z_FULL_FLUSH)
    bomb = head + block * 256 + b"\x03\x00"
    assert len(bomb) < 300_000

    tracemalloc.start()
    try:
        with pytest.raises(InflateLimit):
            walk(InflatingSource(io.BytesIO(bomb), 64 * 1024 * 1024), False, True, frozenset())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while inflating"


def test_odd_vrs_are_read_as_pydicom_reads_them():
    """In range but unknown: a 2-byte length. Out of range: an implicit VR element."""
    unknown = struct.pack("<HH2sH", 0x0019, 0x1058, b"S\x18", 2) + b"\x01\x00"
    implicit = struct.pack("<HHL", 0x0019, 0x1059, 2) + b"\x01\x00"
    _walk(unknown + implicit + _element(ROWS, b"US", b"\x10\x00"))
