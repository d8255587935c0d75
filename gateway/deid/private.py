"""Private attributes: removed, except the few known safe ones under Retain Safe Private.

A private element is identified by its private creator, its group and its element offset inside
the creator's block (``(0019,xx0C)`` under "SIEMENS MR HEADER"), never by its raw tag, because
the block number changes from one file to another. The safe list lives in data/safe_private.json
with a source for every entry.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def safe_private() -> frozenset[tuple[str, int, int]]:
    """{(creator, group, element offset)} of the attributes Retain Safe Private keeps."""
    text = resources.files("gateway.deid").joinpath("data/safe_private.json").read_text()
    entries = json.loads(text)["attributes"]
    return frozenset((e["creator"].strip(), int(e["group"], 16), int(e["element"], 16) & 0xFF) for e in entries)


def creator_of(ds, tag: int) -> str | None:
    """The private creator string that owns ``tag`` in ``ds`` (None if it has none)."""
    group, elem = tag >> 16, tag & 0xFFFF
    if elem < 0x1000:
        return None
    creator = ds.get_item((group << 16) | (elem >> 8))
    if creator is None:
        return None
    value = creator.value
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return str(value).strip().rstrip("\x00").strip() if value is not None else None
