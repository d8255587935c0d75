"""The processes ``serve`` starts beside itself: the worker, the preparers, the forwarder and more
receivers.

Why processes: one process runs Python on one core at a time. Work that needs nothing from the
receiver's memory (the header job, the pixel stage, sending to archives) goes to processes of its
own, so that both cores work.

Each child is spawned (no threads, locks or database engines inherited), ignores Ctrl-C (its
parent says when to stop, through a flag in shared memory), and dies with its parent: the
kernel kills it when the parent dies, even by SIGKILL; a child whose parent died while it was
still starting (before it could ask the kernel for that) finds a parent other than the one
that started it and ends at once; and it stops by itself if it finds it has been orphaned
later. A child that ends without being told to (a crash, the OOM killer) is started again by
``serve`` (:func:`revive`), and what it held in the queue (leases on instances or deliveries)
runs out and is taken up again, as for any process that dies.

Nothing here is a multiprocessing Event. Its ``set`` waits until every process that was waiting
on it has woken and said so; a waiter that died meanwhile (the OOM killer, a SIGKILL, a child
that crashed while its stop-watch was waiting) never says so, and ``set`` blocks for ever: the
worker telling a dead forwarder that outputs wait, or ``serve`` stopping a crashed child, would
hang. The stop flag is a shared byte, and the wake-up calls are semaphores (:class:`Wakeup`):
setting either never waits for anyone.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

_SPAWN = multiprocessing.get_context("spawn")
log = logging.getLogger("gateway")


#: How often a child looks at its stop flag and at its parent.
WATCH_INTERVAL = 0.25


#: How long :func:`stop_all` waits for a child to end before it kills it, unless the child's own
#: ``patience`` says otherwise.
PATIENCE = 30.0


@dataclass
class Child:
    stop: Any  # a byte in shared memory: 1 once the child is to stop
    process: Any  # a multiprocessing Process
    patience: float = PATIENCE  # seconds it may take to end once told
    again: Callable[[], Child] | None = None  # starts another like it (see revive)


def start(target: Callable, args: tuple, name: str) -> Child:
    """Spawn ``target(*args, done)``, where ``done`` (a threading Event in the child) is set once
    :func:`stop_all` is called or the parent is gone."""
    stop = _SPAWN.RawValue("b", 0)
    process = _SPAWN.Process(target=_child, args=(target, args, os.getpid(), stop), name=name, daemon=True)
    process.start()
    return Child(stop, process, again=lambda: start(target, args, name))


class StartFailed(Exception):
    """A child started with :func:`start_and_wait` could not get ready: ``str()`` is its reason."""


def start_and_wait(target: Callable, args: tuple, name: str) -> Child:
    """Spawn ``target(*args, started, done)`` and return once it has called ``started.send(None)``:
    what must work before the parent goes on (a stage that cannot start stops start-up) is then
    known to work. Raises :class:`StartFailed` with the reason the child sent instead (a text
    from a fixed vocabulary, never a value from a dataset), or when it died first."""
    receiving, sending = _SPAWN.Pipe(duplex=False)
    child = start(target, (*args, sending), name)
    sending.close()  # the child's copy stays open: the pipe reads as closed once the child is gone
    try:
        reason = receiving.recv()
    except EOFError:
        reason = f"the {name} process ended before it was ready"
    finally:
        receiving.close()
    if reason is not None:
        stop_all([child])
        raise StartFailed(reason)
    child.again = lambda: start_and_wait(target, args, name)
    return child


def revive(children: list[Child]) -> None:
    """Start again, in place in ``children``, every child that has ended without being told to
    (a crash, the OOM killer): a gateway whose worker died would go on receiving and never
    forward. Said in the log by the child's name and exit code; one that cannot start again is
    tried at the next call."""
    for n, child in enumerate(children):
        if child.stop.value or child.process.is_alive() or child.again is None:
            continue
        log.error("the %s process ended (exit code %s); starting it again", child.process.name,
                  child.process.exitcode)
        try:
            children[n] = replace(child.again(), patience=child.patience)
        except StartFailed as exc:
            log.error("the %s process cannot start again: %s", child.process.name, exc)


class Wakeup:
    """A wake-up call between processes (the worker's, the preparers' and the forwarder's), with the three
    methods of an Event that :func:`gateway.queue.polling.poll_until` uses.

    Why not a multiprocessing Event: see the module's docstring (a waiter that died makes its
    ``set`` block for ever, and the receiver calls after each commit). A semaphore's ``release``
    never blocks. Each ``set`` wakes one waiter: the one that wakes takes the work there is, and
    the others wake at their next poll or call.
    """

    def __init__(self) -> None:
        self._calls = _SPAWN.Semaphore(0)

    def set(self) -> None:
        # One pending call is enough (the waiter takes all the work there is), and calls made while
        # nobody waits (no preparer runs) must not pile up until the semaphore overflows.
        if self._calls.get_value() == 0:
            self._calls.release()

    def wait(self, timeout: float | None = None) -> bool:
        return self._calls.acquire(timeout=timeout)

    def clear(self) -> None:
        """Forget the calls made meanwhile: the waiter is about to look for work anyway."""
        while self._calls.acquire(block=False):
            pass


def stop_all(children: list[Child]) -> None:
    """Tell every child to stop, then wait for each, killing one that takes longer than its
    ``patience``."""
    for child in children:
        child.stop.value = 1
    for child in children:
        child.process.join(child.patience)
        if child.process.is_alive():
            child.process.kill()


def _child(target: Callable, args: tuple, parent: int, stop) -> None:
    """A child's life: die with the parent, leave Ctrl-C to it, run ``target``."""
    _die_with_parent()
    if os.getppid() != parent:
        return  # the parent died before the kernel was asked to stop this child with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target(*args, _watch(stop, parent))


def _watch(stop, parent: int) -> threading.Event:
    """An Event set once the ``stop`` flag is raised or the process is no longer ``parent``'s."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(WATCH_INTERVAL):
            if stop.value or os.getppid() != parent:
                done.set()

    threading.Thread(target=watch, daemon=True, name="stop-watch").start()
    return done


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
