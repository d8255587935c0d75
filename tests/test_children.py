"""The processes ``serve`` starts beside itself never outlive it (gateway.children).

A gateway killed outright must not leave a forwarder or a preparer running on its own, still
claiming work, whether it dies long after starting them or while they are still starting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from gateway import children
from tests.peers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def linger(marker: str, done) -> None:
    """A child that says it runs, then runs until it is told to stop or finds itself orphaned."""
    Path(marker).write_text(str(os.getpid()))
    done.wait()


PARENT = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from gateway import children
from tests.test_children import linger
child = children.start(linger, ({marker!r},), "lingering")
print(child.process.pid, flush=True)
if {wait_for_child}:
    while not Path({marker!r}).exists():
        time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _child_of_a_killed_parent(tmp_path: Path, wait_for_child: bool) -> int:
    marker = str(tmp_path / "running")
    script = PARENT.format(root=str(ROOT), marker=marker, wait_for_child=wait_for_child)
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return int(parent.stdout.split()[0])


def test_a_child_dies_with_a_parent_killed_while_it_runs(tmp_path):
    pid = _child_of_a_killed_parent(tmp_path, wait_for_child=True)
    wait_for(lambda: _gone(pid), 10, what="the child to end with its parent")


def test_a_child_whose_parent_was_killed_while_it_started_ends_at_once(tmp_path):
    pid = _child_of_a_killed_parent(tmp_path, wait_for_child=False)
    wait_for(lambda: _gone(pid), 30, what="the orphaned child to end")
    assert not (tmp_path / "running").exists()  # it never began its work


def test_stop_all_ends_children_cleanly(tmp_path):
    marker = tmp_path / "running"
    child = children.start(linger, (str(marker),), "lingering")
    wait_for(marker.exists, 30, what="the child to start")
    started = time.monotonic()
    children.stop_all([child])
    assert child.process.exitcode == 0
    assert time.monotonic() - started < 30  # told, not killed after the wait


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process names are set through Linux's prctl")
def test_ps_and_top_show_a_child_by_what_it_does(tmp_path):
    marker = tmp_path / "running"
    child = children.start(linger, (str(marker),), "preparer-1")
    try:
        wait_for(marker.exists, 30, what="the child to start")
        assert Path(f"/proc/{child.process.pid}/comm").read_text().strip() == "deid-preparer-1"
        assert psutil.Process(child.process.pid).name() == "deid-preparer-1"
    finally:
        children.stop_all([child])


def own_name() -> str:
    return Path("/proc/self/comm").read_text().strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process names are set through Linux's prctl")
def test_deid_s_processes_show_as_deid_batch(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    from gateway import batch
    from gateway.config import load_config

    config = load_config(None, {"storage": {"root": str(tmp_path)}, "pixels": {"enabled": False}})
    args = (config, tmp_path / "out", config.deid.profile, "cpu")
    with ProcessPoolExecutor(1, initializer=batch._init, initargs=args) as pool:
        assert pool.submit(own_name).result() == "deid-batch"
    before = own_name()
    batch._init(*args)  # --jobs 1: the command's own process keeps its name
    assert own_name() == before


def wait_for_call(wakeup, marker: str, done) -> None:
    """A child that waits up to a minute for a wake-up call, then says how long it waited."""
    start = time.monotonic()
    woken = wakeup.wait(60)
    Path(marker).write_text(f"{woken} {time.monotonic() - start:.3f}")


def test_a_wake_up_call_reaches_a_child_at_once_and_a_cleared_one_is_forgotten(tmp_path):
    wakeup = children.Wakeup()
    marker = tmp_path / "woken"
    child = children.start(wait_for_call, (wakeup, str(marker)), "waiting")
    try:
        time.sleep(1.0)  # the child is waiting
        wakeup.set()
        wait_for(marker.exists, 10, what="the child woken")
        woken, waited = marker.read_text().split()
        assert woken == "True" and float(waited) < 30
    finally:
        children.stop_all([child])

    wakeup.set()
    wakeup.set()
    wakeup.clear()  # the calls made meanwhile are forgotten
    assert not wakeup.wait(0.2)

    for _ in range(1000):  # calls nobody waits for (no preparer runs) do not pile up
        wakeup.set()
    assert wakeup.wait(0) and not wakeup.wait(0.2)


def wait_for_calls(wakeup, marker: str, done) -> None:
    """A child that says it runs, then waits for wake-up calls until it is stopped."""
    Path(marker).write_text(str(os.getpid()))
    while not done.is_set():
        wakeup.wait(60)


def test_a_child_killed_while_waiting_hangs_neither_the_wake_up_call_nor_stopping_it(tmp_path):
    """A multiprocessing Event's set() waits for every waiter to wake: a dead one never does."""
    wakeup = children.Wakeup()
    marker = tmp_path / "waiting"
    child = children.start(wait_for_calls, (wakeup, str(marker)), "waiting")
    wait_for(marker.exists, 30, what="the child waiting")
    time.sleep(0.5)  # in wakeup.wait(), and its stop-watch in its own wait
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.join(10)

    finished = threading.Event()

    def call_then_stop() -> None:
        wakeup.set()
        children.stop_all([child])
        finished.set()

    threading.Thread(target=call_then_stop, daemon=True).start()
    assert finished.wait(10), "a dead waiter blocked the wake-up call or stop_all"


def get_ready(outcome: str, started, done) -> None:
    """A child that gets ready (or fails to, saying why, or dies first), then waits to be stopped."""
    if outcome == "dies":
        os._exit(3)
    if outcome == "hangs":
        time.sleep(600)
    started.send(None if outcome == "ready" else outcome)
    if outcome == "ready":
        done.wait()


def test_start_and_wait_returns_once_the_child_is_ready():
    child = children.start_and_wait(get_ready, ("ready",), "ready")
    try:
        assert child.process.is_alive()
    finally:
        children.stop_all([child])
    assert child.process.exitcode == 0


def test_a_child_that_cannot_get_ready_stops_its_start_with_its_reason():
    with pytest.raises(children.StartFailed, match="^no such profile$"):
        children.start_and_wait(get_ready, ("no such profile",), "failing")


def test_a_child_that_dies_before_it_is_ready_stops_its_start():
    with pytest.raises(children.StartFailed, match="the dying process ended before it was ready"):
        children.start_and_wait(get_ready, ("dies",), "dying")


def test_a_child_that_ended_untold_is_started_again_in_its_place_and_one_told_to_stop_is_not(tmp_path):
    marker = tmp_path / "running"
    crashed = children.start(linger, (str(marker),), "lingering")
    crashed.patience = 7.0
    wait_for(marker.exists, 30, what="the child to start")
    marker.unlink()
    crashed.process.kill()
    crashed.process.join(30)
    stopped = children.start_and_wait(get_ready, ("ready",), "ready")
    children.stop_all([stopped])
    running = [crashed, stopped]

    def revived() -> bool:
        children.revive(running)
        return running[0] is not crashed

    try:
        wait_for(revived, 10, what="the crashed child to be started again")  # after 1 s: it died young
        assert running[0].patience == 7.0
        wait_for(marker.exists, 30, what="the crashed child to start again")
        assert running[1] is stopped  # told to stop: left stopped
    finally:
        children.stop_all(running)


def test_a_child_that_hangs_before_it_is_ready_is_killed_once_ready_seconds_have_passed(monkeypatch):
    monkeypatch.setattr(children, "READY_SECONDS", 1.0)
    before = set(psutil.Process().children())
    started = time.monotonic()
    with pytest.raises(children.StartFailed, match="^the hanging process was not ready within 1 s$"):
        children.start_and_wait(get_ready, ("hangs",), "hanging")
    assert time.monotonic() - started < 20  # killed, not given PATIENCE to heed a stop flag
    assert not [p for p in set(psutil.Process().children()) - before if "spawn_main" in " ".join(p.cmdline())]


def test_a_start_under_way_is_given_up_once_the_gateway_stops():
    stopping = threading.Event()
    threading.Timer(0.5, stopping.set).start()
    started = time.monotonic()
    with pytest.raises(children.StartFailed, match="given up while it started: the gateway is stopping"):
        children.start_and_wait(get_ready, ("hangs",), "hanging", abandon=stopping)
    assert time.monotonic() - started < 20


def end_at_once(done) -> None:
    os._exit(3)


def test_a_child_that_keeps_ending_soon_after_it_starts_is_started_again_less_and_less_often(monkeypatch, caplog):
    monkeypatch.setattr(children, "RESTART_FIRST", 0.2)
    monkeypatch.setattr(children, "RESTART_MOST", 0.8)
    running = [children.start(end_at_once, (), "failing")]
    restarts: list[tuple[float, float]] = []  # (delay it was due, time since its end was found)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(restarts) < 5:
        before = running[0]
        children.revive(running)
        if running[0] is not before:
            restarts.append((before.restart_delay(), time.monotonic() - before.ended))
        time.sleep(0.02)
    children.stop_all(running)

    assert [due for due, _ in restarts] == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert all(waited >= due for due, waited in restarts)  # never started again before its time
    assert "the failing process ended (exit code 3); starting it again in 0 s" in caplog.text


def test_a_child_that_ran_steadily_before_it_ended_is_started_again_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(children, "STEADY_SECONDS", 0.5)
    marker = tmp_path / "running"
    running = [children.start(linger, (str(marker),), "lingering")]
    running[0].early_ends = 3  # it had ended early three times in a row before this life
    wait_for(marker.exists, 30, what="the child to start")
    time.sleep(0.6)
    marker.unlink()
    running[0].process.kill()
    running[0].process.join(30)
    crashed = running[0]
    children.revive(running)
    try:
        assert running[0] is not crashed and crashed.restart_delay() == 0
        wait_for(marker.exists, 30, what="the child to start again")
    finally:
        children.stop_all(running)


def build_then_wait(failure: str, started, done) -> None:
    """A child that builds what it needs through ``children.get_ready``; the build fails as told."""
    from gateway.config import ConfigError

    def build():
        if failure == "setting":
            raise ConfigError("queue.lease_seconds must be at least 10")
        if failure == "error":
            raise ValueError("DOE^JANE")  # a message that might quote a dataset
        return "built"

    if children.get_ready(started, build, "the builder") == "built":
        done.wait()


@pytest.mark.parametrize("failure, reason", [
    ("setting", "^queue.lease_seconds must be at least 10$"),  # a setting's own text, as the parent prints it
    ("error", r"^the builder could not start \(ValueError\)$"),  # any other error by its type only
])
def test_a_child_that_cannot_build_what_it_needs_says_why_without_quoting_the_error(failure, reason):
    with pytest.raises(children.StartFailed, match=reason):
        children.start_and_wait(build_then_wait, (failure,), "builder")


def test_a_child_that_built_what_it_needs_is_ready():
    child = children.start_and_wait(build_then_wait, ("none",), "builder")
    children.stop_all([child])
    assert child.process.exitcode == 0
