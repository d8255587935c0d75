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
runs out and is taken up again, as for any process that dies. One that keeps ending soon after
it starts (a full disk, a database it cannot open) is started again less and less often, each
start costing a core for a second or more.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

_SPAWN = multiprocessing.get_context("spawn")
log = logging.getLogger("gateway")


#: How often a child looks at its stop flag and at its parent.
WATCH_INTERVAL = 0.25


#: How long :func:`stop_all` waits for a child to end before it kills it, unless the child's own
#: ``patience`` says otherwise.
PATIENCE = 30.0

#: How long :func:`start_and_wait` waits for a child to say it is ready before it kills it: a
#: worker loading its models on a slow disk takes seconds, one hung on a lock takes for ever.
READY_SECONDS = 300.0

#: A child that ended within STEADY_SECONDS of its start is started again RESTART_FIRST seconds
#: later, then twice as long after each such end in a row, up to RESTART_MOST; one that had run
#: steadily is started again at once.
STEADY_SECONDS = 60.0
RESTART_FIRST = 1.0
RESTART_MOST = 60.0


@dataclass
class Child:
    stop: Any  # a byte in shared memory: 1 once the child is to stop
    process: Any  # a multiprocessing Process
    patience: float = PATIENCE  # seconds it may take to end once told
    again: Callable[[threading.Event | None], Child] | None = None  # starts another like it (see revive)
    born: float = field(default_factory=time.monotonic)
    early_ends: int = 0  # ends in a row, each within STEADY_SECONDS of its start
    ended: float | None = None  # when revive found it ended

    def restart_delay(self) -> float:
        if not self.early_ends:
            return 0.0
        return min(RESTART_MOST, RESTART_FIRST * 2 ** (self.early_ends - 1))


def start(target: Callable, args: tuple, name: str) -> Child:
    """Spawn ``target(*args, done)``, where ``done`` (a threading Event in the child) is set once
    :func:`stop_all` is called or the parent is gone."""
    stop = _SPAWN.RawValue("b", 0)
    process = _SPAWN.Process(target=_child, args=(target, args, os.getpid(), stop), name=name, daemon=True)
    process.start()
    return Child(stop, process, again=lambda abandon=None: start(target, args, name))


class StartFailed(Exception):
    """A child started with :func:`start_and_wait` could not get ready: ``str()`` is its reason."""


def start_and_wait(target: Callable, args: tuple, name: str, abandon: threading.Event | None = None) -> Child:
    """Spawn ``target(*args, started, done)`` and return once it has called ``started.send(None)``:
    what must work before the parent goes on (a stage that cannot start stops start-up) is then
    known to work. Raises :class:`StartFailed` with the reason the child sent instead (a text
    from a fixed vocabulary, never a value from a dataset), when it died first, when it was not
    ready within READY_SECONDS, or once ``abandon`` is set (the parent is stopping); a child not
    ready by then is killed."""
    receiving, sending = _SPAWN.Pipe(duplex=False)
    child = start(target, (*args, sending), name)
    sending.close()  # the child's copy stays open: the pipe reads as closed once the child is gone
    try:
        answered, reason = _readiness(receiving, name, abandon)
    finally:
        receiving.close()
    if reason is not None:
        if not answered:  # hung, or not worth waiting for: it would not heed its stop flag either
            child.process.kill()
        stop_all([child])
        raise StartFailed(reason)
    child.again = lambda abandon=None: start_and_wait(target, args, name, abandon)
    return child


def get_ready(started, build: Callable[[], Any], what: str) -> Any | None:
    """In a child started with :func:`start_and_wait`: ``build()`` what it needs before the
    parent goes on, then say so on ``started``. None is sent once it is built; otherwise the
    reason is sent: a ``ConfigError``'s own text, which names a setting, or any other error's
    type only (its message might quote a value), as "``what`` could not start (Type)". Returns
    what was built, or None when nothing was."""
    from gateway.config import ConfigError

    try:
        built = build()
    except ConfigError as exc:
        started.send(str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - said by type, as any error is
        started.send(f"{what} could not start ({type(exc).__name__})")
        return None
    started.send(None)
    started.close()
    return built


def _readiness(receiving, name: str, abandon: threading.Event | None) -> tuple[bool, str | None]:
    """Whether the starting child answered, and what it sent (None: ready) or why it is given up."""
    deadline = time.monotonic() + READY_SECONDS
    while not receiving.poll(WATCH_INTERVAL):  # true also once the pipe is closed
        if abandon is not None and abandon.is_set():
            return False, f"the {name} process was given up while it started: the gateway is stopping"
        if time.monotonic() > deadline:
            return False, f"the {name} process was not ready within {READY_SECONDS:.0f} s"
    try:
        return True, receiving.recv()
    except EOFError:
        return True, f"the {name} process ended before it was ready"


def revive(children: list[Child], abandon: threading.Event | None = None) -> list[tuple[str, int | None]]:
    """Start again, in place in ``children``, every child that has ended without being told to
    (a crash, the OOM killer): a gateway whose worker died would go on receiving and never
    forward. Said in the log by the child's name and exit code. One that ended soon after it
    started waits longer each time (:meth:`Child.restart_delay`), and so does one that cannot
    start again. ``abandon`` (set when the gateway stops) gives up a start still under way, so
    that stopping never waits for a child that hangs while it starts. Returns the name and exit
    code of each child found ended by this call, for the audit trail."""
    now = time.monotonic()
    found: list[tuple[str, int | None]] = []
    for n, child in enumerate(children):
        if child.stop.value or child.process.is_alive() or child.again is None:
            continue
        if child.ended is None:
            found.append((child.process.name, child.process.exitcode))
            _ended(child, now, "the %s process ended (exit code %s); starting it again in %.0f s",
                   child.process.name, child.process.exitcode)
        if now - child.ended < child.restart_delay():
            continue
        try:
            children[n] = replace(child.again(abandon), patience=child.patience, early_ends=child.early_ends)
        except StartFailed as exc:
            if abandon is not None and abandon.is_set():
                break
            _ended(child, time.monotonic(), "the %s process cannot start again: %s; trying again in %.0f s",
                   child.process.name, exc)
    return found


def _ended(child: Child, now: float, message: str, *args: object) -> None:
    """Note that ``child`` ended (or did not start) at ``now``, and say when it starts again."""
    child.early_ends = child.early_ends + 1 if now - child.born < STEADY_SECONDS else 0
    child.born, child.ended = now, now  # a start that failed counts as a life that ended at once
    log.error(message, *args, child.restart_delay())


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
    name_for_the_system(multiprocessing.current_process().name)
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


#: What ``ps`` and ``top`` show for a child: ``deid-worker``, ``deid-preparer-1``… (Linux keeps 15 bytes).
SYSTEM_NAME = "deid-{}"


def name_for_the_system(name: str) -> None:
    """Linux: show the process as what it does, rather than as one more ``python`` among the
    gateway's (``prctl(PR_SET_NAME)``): an operator reading ``top`` sees which part takes the CPU
    or the memory, and ``bench.chain`` counts each part's CPU by it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(15, SYSTEM_NAME.format(name).encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
