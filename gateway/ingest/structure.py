"""A strict walk over a received data set's element structure, reading from its file.

pydicom reads leniently: a stream cut short parses as a shorter data set with only a warning,
and it reads values (sequences, deflated bodies) into memory. The receiver must refuse a
truncated stream and must not hold an instance in memory, so it walks the structure itself:
element headers are read, values are skipped with a bounds check, and only the few top-level
values the receiver needs (UIDs, the image description) are kept. Memory stays at a few
buffers whatever the instance's size.

Like pydicom, undefined-length sequences and encapsulated pixel data are walked item by item,
and a defined-length value (sequences included) is checked only to fit in the stream.
A deflated data set is inflated as it is walked, with a hard limit on the bytes it yields.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)  # float, double float, pixel data
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
                      b"UT", b"UV"})
MAX_DEPTH = 32  # nested undefined-length sequences; real data nests a handful deep
MAX_KEPT_VALUE = 1024  # a wanted value longer than this is no header fact; it is not kept
CHUNK = 64 * 1024


class Truncated(Exception):
    """The stream ends inside an element."""


class Malformed(Exception):
    """The stream is not a data set; ``args[0]`` is a fixed description, never a value."""


class InflateLimit(Exception):
    """A deflated data set inflates to more than its limit."""


class DoesNotInflate(Exception):
    """A deflated data set's stream is corrupt or cut short."""


class Source(Protocol):
    def read(self, n: int) -> bytes: ...  # up to n bytes; fewer only at the end
    def skip(self, n: int) -> None: ...  # raises Truncated past the end
    def tell(self) -> int: ...


class FileSource:
    """A seekable file from its current position: skipping is a seek, checked against its size.

    The position is counted here rather than asked of the file: a buffered file's ``tell()`` is
    a system call each time, which lets go of the interpreter, and with a dozen associations
    receiving at once each element's ``tell()`` then waited for its turn to run again."""

    def __init__(self, f: BinaryIO, size: int):
        self._f, self._size = f, size
        self._position = f.tell()

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        self._position += len(data)
        return data

    def skip(self, n: int) -> None:
        if self._position + n > self._size:
            raise Truncated
        self._f.seek(n, 1)
        self._position += n

    def tell(self) -> int:
        return self._position


class InflatingSource:
    """A raw-deflate stream, inflated a chunk at a time; more than ``limit`` bytes out raises
    InflateLimit, so a bomb costs ``limit`` bytes of CPU and a chunk of memory, no more."""

    def __init__(self, f: BinaryIO, limit: int):
        self._f, self._limit = f, limit
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._consumed = 0  # bytes handed out by read() and skip()
        self._produced = 0

    def _fill(self, want: int) -> None:
        """Inflate until ``want`` bytes are buffered or the deflate stream has ended."""
        inflater = self._inflater
        while len(self._buffer) < want and not inflater.eof:
            data = inflater.unconsumed_tail or self._f.read(CHUNK)
            if not data:
                raise DoesNotInflate  # the deflate stream is cut short
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error:
                raise DoesNotInflate from None
            self._produced += len(out)
            if self._produced > self._limit:
                raise InflateLimit
            self._buffer += out

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        self._consumed += len(out)
        return out

    def skip(self, n: int) -> None:
        while n:
            self._fill(min(n, CHUNK))
            if not self._buffer:
                raise Truncated
            step = min(n, len(self._buffer))
            del self._buffer[:step]
            self._consumed += step
            n -= step

    def tell(self) -> int:
        return self._consumed


@dataclass
class Structure:
    """What the walk keeps: wanted top-level elements (raw, for a pydicom Dataset) and, per
    pixel data element present, its length (None: undefined, i.e. encapsulated)."""

    elements: dict[BaseTag, RawDataElement] = field(default_factory=dict)
    pixel_lengths: dict[int, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Encoding:
    implicit: bool
    little: bool

    @property
    def endian(self) -> str:
        return "<" if self.little else ">"


# An undefined-length UN element is a sequence in implicit VR little endian (PS3.5 6.2.2).
_UN_SEQUENCE = _Encoding(implicit=True, little=True)


def walk(source: Source, implicit: bool, little: bool, wanted: frozenset[int]) -> Structure:
    """Walk a whole data set from ``source``; raise Truncated, Malformed, InflateLimit or
    DoesNotInflate. ``wanted`` are the tags of top-level elements whose values to keep."""
    walker = _Walker(source, wanted)
    walker.dataset(_Encoding(implicit, little), depth=0)
    return walker.found


class _Walker:
    def __init__(self, source: Source, wanted: frozenset[int]):
        self.source, self.wanted, self.found = source, wanted, Structure()

    def _exactly(self, n: int) -> bytes:
        data = self.source.read(n)
        if len(data) < n:
            raise Truncated
        return data

    def dataset(self, enc: _Encoding, depth: int) -> None:
        """Elements until the end of the stream (depth 0) or an item delimiter (inside an
        undefined-length item)."""
        while True:
            header = self.source.read(8)
            if not header and depth == 0:
                return
            if len(header) < 8:
                raise Truncated
            group, element = struct.unpack(enc.endian + "HH", header[:4])
            tag = group << 16 | element
            if tag == ITEM_END and depth > 0:
                return
            if group == 0xFFFE:
                raise Malformed("misplaced item or delimiter")
            self._element(tag, header, enc, depth)

    def _element(self, tag: int, header: bytes, enc: _Encoding, depth: int) -> None:
        vr, length = self._vr_and_length(header, enc)
        value_tell = self.source.tell()
        if length == UNDEFINED:
            if depth == 0 and tag in PIXEL_TAGS:
                self.found.pixel_lengths[tag] = None
            if vr == b"SQ" or (vr is None and tag not in PIXEL_TAGS):
                self._sequence(enc, depth + 1)
            elif vr == b"UN":
                self._sequence(_UN_SEQUENCE, depth + 1)
            else:
                self._fragments(enc)
            return
        if depth == 0 and tag in PIXEL_TAGS:
            self.found.pixel_lengths[tag] = length
        if depth == 0 and tag in self.wanted and length <= MAX_KEPT_VALUE:
            value = self._exactly(length)
            self.found.elements[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), vr.decode("latin-1") if vr else None, length, value, value_tell,
                enc.implicit, enc.little,
            )
        else:
            self.source.skip(length)

    def _vr_and_length(self, header: bytes, enc: _Encoding) -> tuple[bytes | None, int]:
        if enc.implicit:
            return None, struct.unpack(enc.endian + "L", header[4:8])[0]
        vr = header[4:6]
        if not b"AA" <= vr <= b"ZZ":
            # Read as pydicom reads it, and so will the worker: some writers switch to implicit
            # VR mid-stream, so an element whose VR is out of range is taken as implicit...
            return None, struct.unpack(enc.endian + "L", header[4:8])[0]
        if vr in LONG_VRS:
            return vr, struct.unpack(enc.endian + "L", self._exactly(4))[0]
        # ...and an unknown VR in range has a 2-byte length (as dcmtk reads it, too).
        return vr, struct.unpack(enc.endian + "H", header[6:8])[0]

    def _item_header(self, enc: _Encoding) -> tuple[int, int]:
        group, element, length = struct.unpack(enc.endian + "HHL", self._exactly(8))
        return group << 16 | element, length

    def _sequence(self, enc: _Encoding, depth: int) -> None:
        """Items of an undefined-length sequence, up to its delimiter."""
        if depth > MAX_DEPTH:
            raise Malformed("sequences nested too deeply")
        while True:
            tag, length = self._item_header(enc)
            if tag == SEQUENCE_END:
                return
            if tag != ITEM:
                raise Malformed("sequence holds something other than items")
            if length == UNDEFINED:
                self.dataset(enc, depth)
            else:
                self.source.skip(length)

    def _fragments(self, enc: _Encoding) -> None:
        """Encapsulated pixel data: items of defined length, then a sequence delimiter."""
        while True:
            tag, length = self._item_header(enc)
            if tag == SEQUENCE_END:
                return
            if tag != ITEM or length == UNDEFINED:
                raise Malformed("encapsulated pixel data is not a list of fragments")
            self.source.skip(length)
