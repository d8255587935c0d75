"""The loop every queue consumer runs: take work while there is some, wait when there is none.

The worker, the preparers and the forwarder each poll the database for what is theirs. A failed
round (the database briefly away, and the like) is logged by its type only and counts as idle,
so a consumer never spins on an error nor dies of one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("gateway.queue")


def poll_until(stop: threading.Event, run_once: Callable[[], object], interval: float, name: str,
               wake: threading.Event | None = None) -> None:
    """Call ``run_once`` until ``stop`` is set; after a round that found nothing (a falsy result)
    or failed, wait ``interval`` seconds, or less if ``wake`` is set meanwhile (then cleared)."""
    wake = wake or stop
    while not stop.is_set():
        try:
            busy = run_once()
        except Exception as exc:  # noqa: BLE001 - logged by type: a message may quote a value
            log.error("%s loop error: %s", name, type(exc).__name__)
            busy = False
        if not busy:
            wake.wait(interval)
            if wake is not stop:
                wake.clear()
