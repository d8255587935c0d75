"""Keeping a lease alive while the work it covers goes on.

A lease says "this worker is alive and on it". Renewing it only when a result is committed ties
its life to the slowest step instead: one long cine, a read-ahead group, a slow archive, and the
lease runs out under a worker that is busy, another worker takes the job and does it again.
A :class:`Heartbeat` renews on a timer of its own, for as long as the work runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("gateway.heartbeat")


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on its own thread, inside a ``with`` block.

    ``beat`` returns False once there is nothing left to keep alive (the lease was taken over);
    the heartbeat then stops, and the work finds out at its next commit. An error in ``beat``
    (the database briefly locked) is logged, and the next beat tries again.
    """

    def __init__(self, beat: Callable[[], bool], interval: float, name: str = "heartbeat"):
        self._beat = beat
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._beat():
                    return
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                log.warning("%s: renewing failed (%s); trying again", self._thread.name, type(exc).__name__)
