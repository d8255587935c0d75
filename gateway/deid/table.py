"""PS3.15 Table E.1-1, loaded from the gateway's own data file (see data/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Row:
    """One attribute row: its basic action and its action under each option that has one."""

    tag: str  # 8 hex digits, 'x' wildcards, or 'private'
    name: str
    basic: str
    options: dict[str, str] = field(default_factory=dict)
    keyword: str | None = None
    vr: str | None = None

    @property
    def is_exact(self) -> bool:
        return self.tag != "private" and "x" not in self.tag

    @property
    def tag_int(self) -> int:
        return int(self.tag, 16)


@cache
def load_rows() -> tuple[Row, ...]:
    """All 621 rows; cached, since every profile is compiled from them."""
    text = resources.files("gateway.deid").joinpath("data/annex_e.json").read_text()
    data = json.loads(text)
    rows = tuple(
        Row(
            tag=r["tag"],
            name=r["name"],
            basic=r["basic"],
            options=dict(r.get("options", {})),
            keyword=r.get("keyword"),
            vr=r.get("vr"),
        )
        for r in data["rows"]
    )
    if len(rows) != data["row_count"]:
        raise RuntimeError("annex_e.json is truncated")
    return rows


def action_for(row: Row, options: frozenset[str] | set[str]) -> tuple[str, str | None]:
    """The row's action under ``options`` and the option that decided it (None: the basic profile).

    Options are applied in :data:`gateway.deid.options.PRECEDENCE` order, the last one that has
    a column for this row wins.
    """
    from gateway.deid.options import PRECEDENCE

    action, decided_by = row.basic, None
    for option in PRECEDENCE:
        if option in options and option in row.options:
            action, decided_by = row.options[option], option
    return action, decided_by
