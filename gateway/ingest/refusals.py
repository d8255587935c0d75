"""How many refusals from one address the audit trail records one by one.

A modality configured with the wrong called AE title may try again at once, for ever, and a
port scan or a flood opens associations as fast as the port answers: each refusal was an audit
row and a log line, about 190 a second in a measured flood, kept for good. Here each address
gets :data:`ONE_BY_ONE_PER_MINUTE` refusals a minute recorded one by one. Past that, its
refusals are counted, and once its minute is over the count goes into one row per event and
reason (``refusals: N``), written at that address's next refusal, at the next refusal of any
address, or when the receiver stops. The totals stay exact (``/metrics`` adds the counts up),
and the trail stays readable.

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
        self._lock = threading.Lock()

    def one_by_one(self, event: str, address: str, **detail) -> bool:
        """Account for one refusal; whether the caller is to write (and log) it itself. Counts of
        minutes that are over are written first."""
        now = self.clock()
        with self._lock:
            due = self._take_over(now)
            minute = self._minutes.setdefault(address, _Minute(now))
            alone = minute.one_by_one < self.per_minute
            if alone:
                minute.one_by_one += 1
            else:
                kept = tuple(sorted((k, v) for k, v in detail.items() if k not in VARYING))
                minute.held[(event, kept)] += 1
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
            due += [(event, {**dict(kept), "address": address, "refusals": n})
                    for (event, kept), n in minute.held.items()]
        return due

    def _write_all(self, due: list[tuple[str, dict]]) -> None:
        for event, detail in due:
            self.write(event, detail)
