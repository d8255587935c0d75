"""Stopping on SIGTERM and SIGINT, however many arrive.

A signal handler runs in the main thread, between two of its bytecodes, whatever that thread is
doing, and possibly while it holds a lock. Setting a ``threading.Event`` takes its condition's lock.
So a second signal that lands while the first handler is inside ``set`` makes the handler wait, for
ever, on a lock its own thread holds. Signals come in pairs often enough: ``timeout`` or a
container runtime passes on the SIGTERM it got, while a service manager or an operator sends one
too. ``serve`` was seen hung that way. Here the handler only writes a byte to a pipe, which takes
no lock, and a thread of its own does the stopping.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable


def stop_on_signals(stop: Callable[[], object], signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """Call ``stop`` once, in a thread of its own, at the first of ``signals``. Call this from
    the main thread, as ``signal.signal`` requires."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # the handler never waits; a full pipe already holds a stop

    def wait_then_stop() -> None:
        os.read(read_end, 1)
        stop()

    def handler(signum, frame) -> None:
        try:
            os.write(write_end, b"\0")
        except BlockingIOError:
            pass

    threading.Thread(target=wait_then_stop, name="stop-on-signal", daemon=True).start()
    for sig in signals:
        signal.signal(sig, handler)
