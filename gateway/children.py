"""The processes ``serve`` starts beside itself: the preparers and the forwarder.

Why processes: the receiver, the header job and the forwarder are Python threads, and one
process runs Python on one core at a time. Work that needs nothing from the others' memory
(the pixel stage, sending to archives) goes to processes of its own, so that both cores work.

Each child is spawned (no threads, locks or database engines inherited), ignores Ctrl-C (its
parent says when to stop, through a multiprocessing Event), and dies with its parent: the
kernel kills it when the parent dies, even by SIGKILL; a child whose parent died while it was
still starting (before it could ask the kernel for that) finds a parent other than the one
that started it and ends at once; and it stops by itself if it finds it has been orphaned
later. What a child holds in the queue (leases on instances or deliveries) runs out and is
taken up again, as for any process that dies.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Child:
    stop: Any  # a multiprocessing Event
    process: Any  # a multiprocessing Process


def start(target: Callable, args: tuple, name: str) -> Child:
    """Spawn ``target(*args, done)``, where ``done`` (a threading Event in the child) is set once
    :func:`stop_all` is called or the parent is gone."""
    stop = _SPAWN.Event()
    process = _SPAWN.Process(target=_child, args=(target, args, os.getpid(), stop), name=name, daemon=True)
    process.start()
    return Child(stop, process)


def event():
    """An Event that a parent and its children can all set and wait on (the forwarder's wake-up)."""
    return _SPAWN.Event()


def stop_all(children: list[Child], wait: float = 30.0) -> None:
    for child in children:
        child.stop.set()
    for child in children:
        child.process.join(wait)
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
    """An Event set once ``stop`` is set or the process is no longer ``parent``'s."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(0.5) or os.getppid() != parent:
                done.set()

    threading.Thread(target=watch, daemon=True, name="stop-watch").start()
    return done


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
