"""Writers of one process take the database in the order they came (gateway.turns.FirstComeLock):
a thread writing transaction after transaction does not keep another waiting through all of them."""

from __future__ import annotations

import threading
import time

from gateway.turns import FirstComeLock


def _holds_again_and_again(lock, events: list, stop: threading.Event) -> None:
    while not stop.is_set():
        assert lock.acquire(10)
        events.append("held")
        time.sleep(0.0005)  # a chunk of retention's work
        lock.release()


def _turns_taken_before_a_waiter_goes_in(lock) -> int:
    events: list[str] = []
    stop = threading.Event()
    holder = threading.Thread(target=_holds_again_and_again, args=(lock, events, stop))
    holder.start()
    while events.count("held") < 20:
        time.sleep(0.001)
    events.append("wants")
    assert lock.acquire(10)
    events.append("got")
    lock.release()
    stop.set()
    holder.join()
    return events[events.index("wants"):events.index("got")].count("held")


def test_a_waiter_goes_in_at_the_next_release_however_fast_the_holder_takes_the_lock_again():
    """With Python's own lock the holder went on for up to 48 more turns (5 tries here)."""
    assert all(_turns_taken_before_a_waiter_goes_in(FirstComeLock()) <= 1 for _ in range(5))


def test_a_waiter_that_gave_up_is_not_handed_the_lock_later():
    lock = FirstComeLock()
    assert lock.acquire(1)
    started = time.monotonic()
    assert not _acquired_in_thread(lock, 0.2)
    assert time.monotonic() - started >= 0.2
    lock.release()
    assert lock.acquire(0.01)  # free: nobody was handed it
    lock.release()


def _acquired_in_thread(lock, timeout: float) -> bool:
    result = []
    thread = threading.Thread(target=lambda: result.append(lock.acquire(timeout)))
    thread.start()
    thread.join()
    return result[0]
