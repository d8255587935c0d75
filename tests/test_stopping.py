"""The signal handler takes no lock: a signal that lands while the main thread holds the very
lock the stopping needs (a second SIGTERM inside ``Event.set``, say) cannot hang the process."""

from __future__ import annotations

import signal
import threading

from gateway.stopping import stop_on_signals


def test_the_stopping_waits_for_the_lock_the_interrupted_thread_holds_instead_of_hanging_it():
    held, stopped = threading.Lock(), threading.Event()

    def stop() -> None:
        if held.acquire(timeout=10):  # called in the handler itself, this would wait on its own thread
            stopped.set()
            held.release()

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        stop_on_signals(stop, signals=(signal.SIGUSR1,))
        with held:
            signal.raise_signal(signal.SIGUSR1)  # handled here, in this thread, while it holds the lock
            assert not stopped.is_set()
        assert stopped.wait(10)
    finally:
        signal.signal(signal.SIGUSR1, previous)
