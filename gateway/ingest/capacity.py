"""The connections open in each receiving process: for ``ingest.max_associations`` over all of
them, and for which process takes the next one.

pynetdicom counts the associations of its own process only; with several receiving processes
(:mod:`gateway.ingest.listening`) each of them would take the whole limit. So each process
publishes how many connections it holds in a slot of shared memory that only it writes, and an
association is refused while the slots add up to more than the limit.

A process counts its associations by their threads, as pynetdicom does, but only until the
association is over: released, aborted, refused, or its connection closed (as a port monitor's
probe does). Its thread then still runs for a while, auditing what it delivered and stopping its
DUL; counted, it made a sender that opens its next association at once (as modalities do, one per
series or per instance) past the limit: with a limit of 1, 38 of 40 such associations were
refused. A process adds the connections it has accepted whose thread has not started yet (a TLS
handshake comes first). Not the sockets: pynetdicom leaves one open, for the garbage collector,
when the peer has closed its end first. A process publishes when it accepts, when it is asked for
an association, when one is over, and on every turn of its accept loop (at least twice a second);
an association past the limit is refused only once the slots have said so for GRACE_SECONDS, time
for another process to publish that one of its own is over.

Each slot also names the process that writes it. One that has died (the OOM killer, a crash)
holds nothing any more, whatever its slot last said: its connections died with it, and the
others go on receiving without counting them.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import weakref
from pathlib import Path

_SPAWN = multiprocessing.get_context("spawn")

#: How long an association past the limit waits for the count to fall before it is refused, and
#: how often the count is read meanwhile (see ``ConnectionCount.within``).
GRACE_SECONDS = 0.1
GRACE_STEP = 0.005


class ConnectionCount:
    """The connections of every receiving process; this process writes slot ``slot``."""

    def __init__(self, processes: int = 1, slot: int = 0, slots=None, owners=None):
        self._slots = slots if slots is not None else _SPAWN.RawArray("i", processes)
        self._owners = owners if owners is not None else _SPAWN.RawArray("i", processes)  # pids
        self.slot = slot
        self._pending: set = set()  # sockets accepted here, their thread not yet done starting
        self._ended: weakref.WeakSet = weakref.WeakSet()  # see ended(): their threads wind down
        self._lock = threading.Lock()

    def __reduce__(self):
        """What a child process gets: the shared slots, nothing of this process's own."""
        return ConnectionCount, (0, self.slot, self._slots, self._owners)

    def for_process(self, slot: int) -> ConnectionCount:
        """The same count, as the process that writes ``slot`` sees it."""
        return ConnectionCount(slot=slot, slots=self._slots, owners=self._owners)

    def accepted(self, ae, sock) -> None:
        """A connection was accepted; its association thread is not running yet."""
        with self._lock:
            self._pending.add(sock)
        self.publish(ae)

    def started(self, ae, sock) -> None:
        """The thread that starts the association of ``sock`` is done: the association's own
        thread runs, if it ever will, and counts from now on."""
        with self._lock:
            self._pending.discard(sock)
        self.publish(ae)

    def ended(self, assoc) -> None:
        """``assoc`` was refused here, or its connection closed (a port probe's too): it holds no
        place while its thread winds down."""
        with self._lock:
            self._ended.add(assoc)
        self.publish(assoc.ae)

    def publish(self, ae) -> None:
        running = [thread for thread in ae.active_associations if thread.is_acceptor and not self._over(thread)]
        with self._lock:
            # An association's thread runs before the thread that started it is done: count once.
            theirs = {id(getattr(thread.dul.socket, "socket", None)) for thread in running}
            pending = sum(1 for sock in self._pending if id(sock) not in theirs)
            self._slots[self.slot] = len(running) + pending
            self._owners[self.slot] = os.getpid()

    def _over(self, assoc) -> bool:
        """Whether ``assoc`` has ended though its thread still runs."""
        return assoc.is_released or assoc.is_aborted or assoc in self._ended

    def _alive(self) -> list[int]:
        """The counts of the processes alive: one that has died holds nothing any more."""
        return [held for held, owner in zip(self._slots, self._owners) if not (owner and _dead(owner))]

    @property
    def total(self) -> int:
        return sum(self._alive())

    def within(self, limit: int, ae, grace: float = GRACE_SECONDS) -> bool:
        """Whether the connections add up to at most ``limit``, this one included. Past it, the
        slots are read again for up to ``grace`` seconds before the answer is no: another
        process may not have published yet that an association of its own is over (its thread,
        descheduled on a busy machine, had not run that far when the sender's next association
        arrived here)."""
        deadline = time.monotonic() + grace
        while True:
            self.publish(ae)
            if self.total <= limit:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(GRACE_STEP)

    @property
    def busier_than_another(self) -> bool:
        """Whether another process, alive, holds fewer connections than this one."""
        mine = self._slots[self.slot]
        return any(held < mine for held in self._alive())


def _dead(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie too: its parent has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    except (OSError, IndexError):  # no /proc to ask: take it as alive, as before
        return False
    return state in ("Z", "X")
