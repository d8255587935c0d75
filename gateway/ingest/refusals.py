"""How many refusals from one address the audit trail records one by one.

A modality configured with the wrong called AE title may try again at once, for ever, and a
port scan or a flood opens associations as fast as the port answers: each refusal was an audit
row and a log line, about 190 a second in a measured flood, kept for good. Here each address
gets :data:`ONE_BY_ONE_PER_MINUTE` refusals a minute recorded one by one. Past that, its
refusals are counted, and once its minute is over the count goes into one row per event and
reason (``refusals: N``), written at that address's next refusal, at the next refusal of any
address, or when the receiver stops. The totals stay exact (``/metrics`` adds the counts up),
and the trail stays readable.

A flood from many addresses (a scan of the network, a sender that takes a new IPv6 address each
time) would still have written a row for each: every address is new. So a ledger keeps
:data:`ADDRESSES_PER_MINUTE` addresses apart in a minute, all of them together get
:data:`ONE_BY_ONE_ALL_PER_MINUTE` rows one by one, and the refusals of addresses past those are
counted together, in one row per event and reason whose address is :data:`OTHER_ADDRESSES`. The
rows a ledger writes in a minute are bounded, whatever the flood.

Each receiving process keeps its own ledger: an address gets that many rows a minute from each.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

ONE_BY_ONE_PER_MINUTE = 20
#: The same for connections closed as soon as accepted, from an address no allow-list entry names
#: (:func:`gateway.ingest.callers.admits_address`): nothing of them was read, so a monitoring
#: host's TCP probe every few seconds looks like a scan, and 20 rows a minute of it, for good,
#: would bury the rest. The first of each minute is still written at once.
SCREENED_ONE_BY_ONE_PER_MINUTE = 1
#: Addresses a ledger keeps apart in a minute (each with its own rows and counts), and the rows it
#: writes one by one in a minute, all of them together. A few dozen modalities set up wrongly at
#: once stay apart; past that it is a scan, whose addresses matter less than its size.
ADDRESSES_PER_MINUTE = 64
ONE_BY_ONE_ALL_PER_MINUTE = 100
#: The address in the row of the refusals counted together (see above).
OTHER_ADDRESSES = "other addresses"
MINUTE = 60.0
#: Detail that may differ from one refusal to the next and is not kept in a count's row: the
#: calling AE title a flood may make up anew each time.
VARYING = frozenset({"calling_ae"})


@dataclass
class _Minute:
    started: float
    one_by_one: int = 0
    held: Counter = field(default_factory=Counter)  # (event, detail items) -> refusals counted


class RefusalLedger:
    """Decides which refusals are written one by one; ``write(event, detail)`` writes the counts."""

    def __init__(self, write: Callable[[str, dict], None], per_minute: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.write, self.clock = write, clock
        self.per_minute = ONE_BY_ONE_PER_MINUTE if per_minute is None else per_minute
        self._minutes: dict[str, _Minute] = {}  # in the order they started: the oldest first
        self._all: _Minute | None = None  # every address's: rows one by one, other addresses' counts
        self._lock = threading.Lock()

    def one_by_one(self, event: str, address: str, **detail) -> bool:
        """Account for one refusal; whether the caller is to write (and log) it itself. Counts of
        minutes that are over are written first."""
        now = self.clock()
        kept = tuple(sorted((k, v) for k, v in detail.items() if k not in VARYING))
        with self._lock:
            due = self._take_over(now)
            every = self._all = self._all or _Minute(now)
            minute = self._minutes.get(address)
            if minute is None and len(self._minutes) < ADDRESSES_PER_MINUTE:
                minute = self._minutes[address] = _Minute(now)
            alone = (minute is not None and minute.one_by_one < self.per_minute
                     and every.one_by_one < ONE_BY_ONE_ALL_PER_MINUTE)
            if alone:
                minute.one_by_one += 1
                every.one_by_one += 1
            else:
                (minute or every).held[(event, kept)] += 1
        self._write_all(due)
        return alone

    def flush(self) -> None:
        """Write every count held, whether or not its minute is over (the receiver stops)."""
        with self._lock:
            due = self._take_over(float("inf"))
        self._write_all(due)

    def _take_over(self, now: float) -> list[tuple[str, dict]]:
        """Forget the minutes that are over; the rows of what they counted."""
        due = []
        while self._minutes:
            address, minute = next(iter(self._minutes.items()))
            if now - minute.started < MINUTE:
                break  # the later ones started later still
            del self._minutes[address]
            due += _rows(minute, address)
        if self._all is not None and now - self._all.started >= MINUTE:
            due += _rows(self._all, OTHER_ADDRESSES)
            self._all = None
        return due

    def _write_all(self, due: list[tuple[str, dict]]) -> None:
        for event, detail in due:
            self.write(event, detail)


def _rows(minute: _Minute, address: str) -> list[tuple[str, dict]]:
    """The count rows of what ``minute`` held, for ``address``."""
    return [(event, {**dict(kept), "address": address, "refusals": n}) for (event, kept), n in minute.held.items()]
