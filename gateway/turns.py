"""Writers taking turns at the database, each in the order it came: within a process
(:class:`FirstComeLock`), then across the processes that write to one SQLite file
(:class:`ProcessTurns`). Why turns at all: see :func:`gateway.db._writer_turns`.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from pathlib import Path


class FirstComeLock:
    """A lock handed to its waiters in the order they came, with a timeout.

    Python's own lock lets the thread that releases it take it again at once, before a waiter
    wakes: a thread writing transaction after transaction (retention purging chunk after chunk)
    kept the receiver's writer, whose C-STORE answer waits for its commit, waiting through all of
    them. Here a release hands the lock to the first waiter directly.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()  # each locked until it is handed the lock

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True
        with self._mutex:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # handed over between the timeout and here: it is ours

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # held still, by the waiter now
            else:
                self._held = False


class ProcessTurns:
    """An exclusive ``flock`` on a file beside the database, taken by one writer of each process
    at a time (the others wait on the process's own lock first).

    Waiters blocked in ``flock`` are handed the lock in turn as it is released: with four
    processes writing flat out (``bench.write_turns --processes 4 --writers 1``) none waited
    over 17 ms, where trying without blocking and sleeping between tries let one process take
    the lock again and again while another waited for 300 ms and more. A blocked ``flock``
    cannot give up, though, and a writer must be able to (``BUSY_SECONDS``): so a thread of the
    process blocks in it on the writer's behalf, and hands the lock back at once if the writer
    stopped waiting meanwhile. The kernel drops the lock of a process that dies, whatever it was
    doing.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None  # opened at the first turn, so that a process that never writes makes no file
        self._wanted = threading.Semaphore(0)  # writer -> taker: take the lock for me
        self._granted = threading.Semaphore(0)  # taker -> writer: it is yours
        self._state = threading.Lock()
        self._abandoned = False  # the writer stopped waiting before the taker got the lock
        self._taker: threading.Thread | None = None

    def acquire(self, deadline: float) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True  # free: no thread handed anything
        except BlockingIOError:
            pass
        if self._taker is None:
            self._taker = threading.Thread(target=self._take_on_request, name="db-turns", daemon=True)
            self._taker.start()
        self._wanted.release()
        if self._granted.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return True
        with self._state:
            if self._granted.acquire(blocking=False):
                return True  # granted while the wait ran out
            self._abandoned = True
        return False

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _take_on_request(self) -> None:
        while True:
            self._wanted.acquire()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            with self._state:
                if self._abandoned:
                    self._abandoned = False
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                else:
                    self._granted.release()
